package marathon_test

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
	"github.com/berth-dev/berth/providers/marathon/marathonemu"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestGoldenRequests records what berth asks of Marathon for the reference workload (an HTTP service, 2 replicas,
// env, public port 8080, HTTP health check, 250m / 512Mi): on create, on a rollout to a new image, on a scale and
// on delete. Each golden lists the requests in order with their answer's status, bodies with sorted keys; a
// request repeated while polling is shown once.
func TestGoldenRequests(t *testing.T) {
	hermetic(t)
	emu := emulator(t, marathonemu.Options{})
	p := newProvider(t, emu, "marathon-prod", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	w := referenceWorkload("web")
	w2 := w
	w2.Image = "registry.example/berth-app:2"
	w3 := w2
	w3.Replicas = 3
	steps := []struct {
		golden string
		run    func() error
	}{
		{"create", func() error { return p.Apply(ctx, desired(owner, "marathon-prod", w)) }},
		{"rollout", func() error { return p.Apply(ctx, desired(owner, "marathon-prod", w2)) }},
		{"scale", func() error { return p.Apply(ctx, desired(owner, "marathon-prod", w3)) }},
		{"delete", func() error { return p.Delete(ctx, owner, "marathon-prod", "web") }},
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

// normalise prints each distinct request once, in first-seen order: "## METHOD path -> status" then the body,
// keys sorted.
func normalise(t *testing.T, reqs []marathonemu.Request) []byte {
	t.Helper()
	var b bytes.Buffer
	seen := map[string]bool{}
	for _, r := range reqs {
		var body []byte
		if len(r.Body) > 0 {
			var v any
			if err := json.Unmarshal(r.Body, &v); err != nil {
				t.Fatalf("%s %s: body is not JSON: %v", r.Method, r.Path, err)
			}
			var enc bytes.Buffer
			e := json.NewEncoder(&enc)
			e.SetEscapeHTML(false)
			e.SetIndent("", "  ")
			if err := e.Encode(v); err != nil {
				t.Fatal(err)
			}
			body = bytes.TrimSpace(enc.Bytes())
		}
		head := fmt.Sprintf("## %s %s -> %d", r.Method, r.Path, r.Status)
		if seen[head+string(body)] {
			continue
		}
		seen[head+string(body)] = true
		b.WriteString(head + "\n")
		if len(body) > 0 {
			b.Write(body)
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}
