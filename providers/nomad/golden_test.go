package nomad_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/nomad/nomademu"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestGoldenRequests records what berth asks of Nomad for the reference workload (an HTTP service, 2 replicas,
// env, public port 8080, HTTP health check, 250m / 512Mi): on create, on a rollout to a new image, on a scale-up and
// on delete. Each golden lists the distinct requests in order (blocking parameters left out, a request repeated
// while polling shown once), bodies with sorted keys and null fields dropped.
func TestGoldenRequests(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "nomad-prod")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	w := referenceWorkload("web")
	apply := func(w2 func()) func() error {
		return func() error {
			w2()
			return p.Apply(ctx, providers.Desired{Owner: owner, Target: "nomad-prod", Workload: w, SpecHash: providers.SpecHash(w)})
		}
	}
	steps := []struct {
		golden string
		run    func() error
	}{
		{"create", apply(func() {})},
		{"rollout", apply(func() { w.Image = "registry.example/berth-app:2" })},
		{"scale", apply(func() { w.Replicas = 3 })},
		{"delete", func() error { return p.Delete(ctx, owner, "nomad-prod", "web") }},
	}
	for _, s := range steps {
		emu.ResetRequests()
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.golden, err)
		}
		got := normalise(t, emu.Requests())
		path := filepath.Join("testdata", s.golden+".golden")
		conformance.Golden(t, path, got, *update)
	}
}

func normalise(t *testing.T, reqs []nomademu.Request) []byte {
	t.Helper()
	var b bytes.Buffer
	seen := map[string]bool{}
	for _, r := range reqs {
		body := ""
		if len(r.Body) > 0 {
			var v any
			if err := json.Unmarshal(r.Body, &v); err != nil {
				t.Fatalf("%s %s: body is not JSON: %v", r.Method, r.Path, err)
			}
			var enc bytes.Buffer
			e := json.NewEncoder(&enc)
			e.SetEscapeHTML(false)
			e.SetIndent("", "  ")
			if err := e.Encode(dropEmpty(v)); err != nil {
				t.Fatal(err)
			}
			body = "\n" + string(bytes.TrimSpace(enc.Bytes()))
		}
		line := fmt.Sprintf("## %s %s%s\n", r.Method, r.Path, body)
		if seen[line] {
			continue
		}
		seen[line] = true
		b.WriteString(line)
	}
	return b.Bytes()
}

// dropEmpty removes null, false, zero, empty string and empty collection fields of objects.
func dropEmpty(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			e = dropEmpty(e)
			switch x := e.(type) {
			case nil:
				delete(t, k)
				continue
			case bool:
				if !x {
					delete(t, k)
					continue
				}
			case float64:
				if x == 0 {
					delete(t, k)
					continue
				}
			case string:
				if x == "" {
					delete(t, k)
					continue
				}
			case map[string]any:
				if len(x) == 0 {
					delete(t, k)
					continue
				}
			case []any:
				if len(x) == 0 {
					delete(t, k)
					continue
				}
			}
			t[k] = e
		}
	case []any:
		for i, e := range t {
			t[i] = dropEmpty(e)
		}
	}
	return v
}
