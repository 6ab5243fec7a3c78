package clouddns_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"google.golang.org/api/option"

	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/providers/endpoint/clouddns"
	"github.com/berth-dev/berth/providers/endpoint/clouddns/clouddnsemu"
	"github.com/berth-dev/berth/schema"
)

// A migration's weight shift, against the emulator: the new copy gets a quarter of new lookups.
func Example() {
	emu := clouddnsemu.New("my-project", "example-com", "example.com.", clouddnsemu.Options{AllowAnonymous: true, Pending: 1})
	api := httptest.NewServer(emu)
	defer api.Close()
	r, err := clouddns.NewRouter(schema.Target{Name: "gcp-main", Type: clouddns.Type, Settings: map[string]any{
		"project": "my-project", "zone": "example-com", "endpoint": api.URL}}, endpoint.Options{Instance: "berth"},
		option.WithoutAuthentication())
	if err != nil {
		fmt.Println(err)
		return
	}
	r.PollInterval = time.Millisecond
	ctx := context.Background()
	owner := endpoint.Owner{Instance: "berth", Environment: "prod", Workload: "web"}
	err = r.Set(ctx, owner, "web.example.com", time.Minute, []endpoint.Member{
		{Target: "aws", Addresses: []string{"lb-1.elb.example.net"}, Weight: 75},
		{Target: "gcp", Addresses: []string{"192.0.2.20"}, Weight: 25},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rec, err := r.Get(ctx, owner, "web.example.com")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range rec.Members {
		fmt.Println(m.Target, m.Addresses, m.Weight)
	}
	for _, s := range emu.RecordSets() {
		fmt.Println(s.Name, s.Type)
	}
	// Output:
	// aws [lb-1.elb.example.net] 75
	// gcp [192.0.2.20] 25
	// _berth-owner.web.example.com. TXT
	// aws._berth.web.example.com. CNAME
	// example.com. NS
	// example.com. SOA
	// gcp._berth.web.example.com. A
	// web.example.com. CNAME
}
