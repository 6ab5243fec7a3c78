package fake_test

import (
	"fmt"
	"testing"

	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/providers/endpoint/fake"
	"github.com/berth-dev/berth/providers/endpoint/routertest"
)

func TestConformance(t *testing.T) {
	var r *fake.Router
	routertest.Run(t, routertest.Harness{
		New:       func(t *testing.T) endpoint.Router { r = fake.New(); return r },
		Name:      func(t *testing.T, i int) string { return fmt.Sprintf("web-%d.example.com", i) },
		Addresses: func(t *testing.T, i int) []string { return []string{fmt.Sprintf("192.0.2.%d", i+1)} },
		HostName:  "lb-1.elb.example.net",
		Lookup: func(t *testing.T, name string, n int) []string {
			var out []string
			for range n {
				target := r.Lookup(name)
				for _, m := range r.Members(name) {
					if m.Target == target {
						out = append(out, m.Addresses...)
					}
				}
			}
			return out
		},
		Foreign: func(t *testing.T, _ endpoint.Router, name string) { r.Plant(name, "198.51.100.9") },
	})
}
