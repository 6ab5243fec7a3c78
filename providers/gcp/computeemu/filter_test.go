package computeemu

import (
	"testing"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/protobuf/proto"
)

func TestFilter(t *testing.T) {
	in := &computepb.Instance{Name: proto.String("berth-main-prod-web-abcd"), Status: proto.String("RUNNING"),
		Labels: map[string]string{"berth-instance": "main", "berth-environment": "pr-42"}}
	for _, c := range []struct {
		filter string
		want   bool
	}{
		{"", true},
		{`labels.berth-instance = "main"`, true},
		{`(labels.berth-instance = "main") (labels.berth-environment = "pr-42")`, true},
		{`(labels.berth-instance = "main") (labels.berth-environment = "prod")`, false},
		{`(labels.berth-instance = "main") AND (status != "RUNNING")`, false},
		{`(labels.berth-environment = "prod") OR (status = "RUNNING")`, true},
		{`labels.berth-preview:*`, false},
		{`labels.berth-environment:*`, true},
		{`name eq berth-main-prod-.*`, true},
		{`name eq berth-main-dev-.*`, false},
		{`name ne "berth-.*"`, false},
		{`labels.other = "x"`, false},
		{`labels.other != "x"`, true},
	} {
		f, e := parseFilter(c.filter)
		if e != nil {
			t.Errorf("parseFilter(%q): %v", c.filter, e.message)
			continue
		}
		if got := f.match(in); got != c.want {
			t.Errorf("%q matches %t, want %t", c.filter, got, c.want)
		}
	}
	for _, bad := range []string{"labels.x", `(name eq a.*) (status = "RUNNING")`, `(a = "b"`, `a = "b" c = "d"`, `name eq (`} {
		if _, e := parseFilter(bad); e == nil || e.code != 400 {
			t.Errorf("parseFilter(%q) accepted", bad)
		}
	}
}
