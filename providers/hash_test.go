package providers

import (
	"testing"

	"github.com/berth-dev/berth/schema"
)

func TestSpecHash(t *testing.T) {
	base := schema.Workload{Name: "web", Provider: "local", Image: "app:v1", Replicas: 1,
		Env: map[string]string{"A": "1", "B": "2"}}
	h := SpecHash(base)
	if len(h) != 12 {
		t.Fatalf("hash %q: want 12 hex characters", h)
	}
	same := base
	same.Provider, same.Replicas = "other", 5
	same.Env = map[string]string{"B": "2", "A": "1"}
	same.Pos = map[string]schema.Pos{"": {File: "x.cue", Line: 1}}
	if SpecHash(same) != h {
		t.Fatal("provider, replicas, positions or map order changed the hash")
	}
	changed := base
	changed.Env = map[string]string{"A": "1", "B": "3"}
	if SpecHash(changed) == h {
		t.Fatal("an env change did not change the hash")
	}
	changed = base
	changed.Image = "app:v2"
	if SpecHash(changed) == h {
		t.Fatal("an image change did not change the hash")
	}
}
