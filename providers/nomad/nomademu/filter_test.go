package nomademu

import (
	"net/http"
	"net/url"
	"testing"
)

func TestFilter(t *testing.T) {
	d := datum(map[string]any{"ID": "web", "Count": 2, "Stop": false, "Tags": []string{"a", "b"},
		"Meta": map[string]string{"berth.dev/instance": "berth", "team": ""}})
	for _, c := range []struct {
		expr string
		want bool
	}{
		{`ID == "web"`, true},
		{`ID != "web"`, false},
		{`Meta["berth.dev/instance"] == "berth"`, true},
		{`Meta["berth.dev/instance"] == "berth" and Meta["berth.dev/target"] == "t"`, false},
		{`Meta["berth.dev/missing"] != "x"`, true},
		{`Meta["berth.dev/missing"] is empty`, true},
		{`Meta.team is empty and Meta.team is not empty`, false},
		{`"a" in Tags or ID == "api"`, true},
		{`not ("c" in Tags)`, true},
		{`Tags contains "b"`, true},
		{"ID matches `^w.b$`", true},
		{`Count == 2 and Stop == false`, true},
		{`Unknown.Field == "x"`, false},
	} {
		f, err := parseFilter(c.expr)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if got := f.eval(d); got != c.want {
			t.Errorf("%s = %v, want %v", c.expr, got, c.want)
		}
	}
	for _, bad := range []string{`ID ==`, `ID = "x"`, `(ID == "x"`, `Meta[x] == "y"`, `ID matches "("`} {
		if _, err := parseFilter(bad); err == nil {
			t.Errorf("%s: parsed", bad)
		}
	}
	s := New(Options{})
	defer s.Close()
	resp, err := http.Get(s.URL() + "/v1/jobs?filter=" + url.QueryEscape(`ID ==`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad filter answers %d", resp.StatusCode)
	}
}
