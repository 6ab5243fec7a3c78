package swarm_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers"
	berthswarm "github.com/berth-dev/berth/providers/swarm"
	"github.com/berth-dev/berth/schema"
)

// offlineWorkloads are workloads with and without problems for swarm; "public-udp" is one only with host-mode
// publishing.
func offlineWorkloads() []schema.Workload {
	dup := referenceWorkload("dup")
	dup.Ports = append(dup.Ports, schema.Port{Port: 8081, Protocol: "tcp", Public: true, HostPort: 8080})
	udp := referenceWorkload("public-udp")
	udp.Ports = append(udp.Ports, schema.Port{Port: 53, Protocol: "udp", Public: true}, schema.Port{Port: 54, Protocol: "udp"})
	internalUDP := referenceWorkload("internal-udp")
	internalUDP.Ports = append(internalUDP.Ports, schema.Port{Port: 54, Protocol: "udp"})
	return []schema.Workload{referenceWorkload("ok"), dup, udp, internalUDP}
}

// TestOfflineEqualsProvider: what `berth validate` learns from a swarm target's settings is what the provider built
// for it reports, Capabilities and Validate alike; without settings.publish, a provider that detects host-mode
// publishing finds one problem more (a public UDP port), which plan time reports.
func TestOfflineEqualsProvider(t *testing.T) {
	remote := "tcp://203.0.113.7:2376" // never reached: New makes a client only, and detection says ingress
	for _, c := range []struct {
		name     string
		settings map[string]any
		publish  string // the mode the provider uses
	}{
		{"ingress", map[string]any{"host": remote, "publish": "ingress"}, berthswarm.PublishIngress},
		{"host", map[string]any{"host": remote, "publish": "host", "publicAddress": "127.0.0.1"}, berthswarm.PublishHost},
		{"detected ingress", map[string]any{"host": remote}, berthswarm.PublishIngress},
		{"detected host", map[string]any{"host": "unix:///var/run/docker.sock"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			tgt := schema.Target{Name: "s", Type: "swarm", Settings: c.settings}
			caps, v, err := providers.OfflineFor(tgt)
			if err != nil {
				t.Fatal(err)
			}
			pv, err := berthswarm.New(tgt, providers.Options{})
			if err != nil {
				t.Fatal(err)
			}
			p := pv.(*berthswarm.Provider)
			defer p.Close()
			if c.publish == "" {
				p.Publish = berthswarm.PublishHost // as detectPublish finds on a kernel without IPVS
			}
			if !reflect.DeepEqual(caps, p.Capabilities()) {
				t.Fatalf("offline capabilities %+v, the provider's %+v", caps, p.Capabilities())
			}
			for _, w := range offlineWorkloads() {
				got, want := v.Validate(w), p.Validate(w)
				if c.publish == "" && w.Name == "public-udp" {
					if len(got) != 0 || len(want) != 1 || want[0].Field != "ports[2].protocol" {
						t.Fatalf("public UDP: offline %+v, with host mode detected %+v", got, want)
					}
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("workload %s: offline problems %+v, the provider's %+v", w.Name, got, want)
				}
			}
		})
	}
	_, _, err := providers.OfflineFor(schema.Target{Name: "bad", Type: "swarm", Pos: schema.Pos{File: "t.cue", Line: 9},
		Settings: map[string]any{"publish": "mesh"}})
	if err == nil || !strings.Contains(err.Error(), "t.cue:9") || !strings.Contains(err.Error(), "settings.publish") {
		t.Fatalf("OfflineFor with a bad publish: %v", err)
	}
}

// TestCapabilitiesHow: every honoured feature says how, in the words of the publishing mode the settings choose.
func TestCapabilitiesHow(t *testing.T) {
	for publish, want := range map[string]string{"ingress": "routing mesh", "host": "berth's TCP proxy", "": "chosen automatically"} {
		settings := map[string]any{}
		if publish != "" {
			settings["publish"] = publish
		}
		caps, _, err := providers.OfflineFor(schema.Target{Name: "s", Type: "swarm", Settings: settings})
		if err != nil {
			t.Fatal(err)
		}
		if !caps.PullsImages {
			t.Fatal("swarm's nodes pull with Desired.ImageAuth: PullsImages must be set")
		}
		if !strings.Contains(caps.How[providers.FeaturePublicPort], want) {
			t.Errorf("publish %q: How[ports.public] = %q, want it to say %q", publish, caps.How[providers.FeaturePublicPort], want)
		}
		for _, f := range providers.Features {
			if caps.How[f] == "" {
				t.Errorf("publish %q: feature %s has no How (swarm honours every feature)", publish, f)
			}
		}
		for f := range caps.How {
			if !slices.Contains(providers.Features, f) {
				t.Errorf("How has %q, not a feature key", f)
			}
		}
	}
}
