package fake

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

func TestOffline(t *testing.T) {
	target := schema.Target{Name: "offline-test", Type: Type}
	if !slices.Contains(providers.Types(), Type) {
		if _, _, err := providers.OfflineFor(target); err == nil || !strings.Contains(err.Error(), `unknown type "fake"`) {
			t.Errorf("before Register: %v, want the unknown type", err)
		}
	}
	Register()
	caps, v, err := providers.OfflineFor(target)
	if err != nil || !reflect.DeepEqual(caps, AllCapabilities) {
		t.Fatalf("default: %+v, %v", caps, err)
	}
	if ps := v.Validate(schema.Workload{Name: "w"}); len(ps) != 0 {
		t.Errorf("default validator: %v", ps)
	}

	// What a test sets on the registered provider of the name is what Offline says.
	p := Lookup(target.Name)
	p.SetCapabilities(providers.Capabilities{HealthHTTP: true})
	p.SetValidator(func(w schema.Workload) []providers.Problem {
		return []providers.Problem{{Field: "image", Message: fmt.Sprintf("no %s", w.Image)}}
	})
	caps, v, err = providers.OfflineFor(target)
	if err != nil || !reflect.DeepEqual(caps, providers.Capabilities{HealthHTTP: true}) {
		t.Fatalf("set: %+v, %v", caps, err)
	}
	if ps := v.Validate(schema.Workload{Image: "app:1"}); !reflect.DeepEqual(ps, []providers.Problem{{Field: "image", Message: "no app:1"}}) {
		t.Errorf("set validator: %v", ps)
	}
	if other, _, _ := providers.OfflineFor(schema.Target{Name: "offline-test-2", Type: Type}); !reflect.DeepEqual(other, AllCapabilities) {
		t.Errorf("another target name: %+v", other)
	}
}
