package azuredns_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/providers/endpoint/azuredns"
	"github.com/berth-dev/berth/providers/endpoint/azuredns/azurednsemu"
	"github.com/berth-dev/berth/providers/endpoint/dnstest"
	"github.com/berth-dev/berth/schema"
)

// A stable name on an emulated Azure DNS zone: one member, then a second one, as a migration adds it.
func Example() {
	emu := azurednsemu.New("sub", "rg", "example.com", azurednsemu.Options{})
	srv := httptest.NewUnstartedServer(emu)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	d, _ := emu.ServeDNS("127.0.0.1:0")
	defer d.Close()

	r, err := azuredns.NewWithCredential(schema.Target{Name: "public", Type: "azuredns", Settings: map[string]any{
		"subscriptionId": "sub", "resourceGroup": "rg", "zone": "example.com", "endpoint": srv.URL,
	}}, endpoint.Options{}, staticToken{}, &arm.ClientOptions{ClientOptions: policy.ClientOptions{Transport: srv.Client()}})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	web := endpoint.Owner{Instance: "berth", Environment: "prod", Workload: "web"}
	_ = r.Set(ctx, web, "web.example.com", time.Minute, []endpoint.Member{{Target: "aws", Addresses: []string{"192.0.2.1"}, Weight: 100}})
	ips, _ := dnstest.Lookup(ctx, d.Addr(), "web.example.com")
	fmt.Println(ips)
	_ = r.Set(ctx, web, "web.example.com", time.Minute, []endpoint.Member{
		{Target: "aws", Addresses: []string{"192.0.2.1"}, Weight: 90}, {Target: "gcp", Addresses: []string{"192.0.2.2"}, Weight: 10}})
	rec, _ := r.Get(ctx, web, "web.example.com")
	for _, m := range rec.Members {
		fmt.Println(m.Target, m.Weight, m.Addresses)
	}
	cname, _ := emu.Get("web", "CNAME")
	a, _ := emu.Get("_berth.web", "A")
	fmt.Println("web is a CNAME to", cname.CNAME, "with", len(a.A), "addresses")
	// Output:
	// [192.0.2.1]
	// aws 90 [192.0.2.1]
	// gcp 10 [192.0.2.2]
	// web is a CNAME to _berth.web.example.com with 2 addresses
}
