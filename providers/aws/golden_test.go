package aws_test

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
	"github.com/berth-dev/berth/providers/aws/ecsemu"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/schema"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestGoldenRequests records what berth asks of ECS for the reference workload (an HTTP service, 2 replicas, env,
// port 8080, a command health check, 250m / 512Mi), and of ECS, ELBv2 and EC2 for the quickstart's web workload (a
// public port 8080 and an HTTP check of /healthz): on create, on a rollout to a new image and on delete. Each
// golden lists the requests in order, bodies with sorted keys and the clientToken replaced; a read repeated while
// polling is shown once.
func TestGoldenRequests(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "aws-prod")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner := providers.Owner{Instance: "berth", Environment: "prod"}
	var steps []struct {
		golden string
		run    func() error
	}
	// The reference workload (no public port: ECS alone), then the quickstart's web workload (a public port and
	// an HTTP check: ELBv2's load balancer, target group and listener too).
	for _, c := range []struct {
		prefix string
		w      schema.Workload
	}{{"", referenceWorkload("web")}, {"quickstart-", quickstartWorkload("web")}} {
		w := c.w
		d := providers.Desired{Owner: owner, Target: "aws-prod", Workload: w, SpecHash: providers.SpecHash(w)}
		steps = append(steps, []struct {
			golden string
			run    func() error
		}{
			{c.prefix + "create", func() error { return p.Apply(ctx, d) }},
			{c.prefix + "rollout", func() error {
				w2 := w
				w2.Image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/berth-app:2"
				return p.Apply(ctx, providers.Desired{Owner: owner, Target: "aws-prod", Workload: w2, SpecHash: providers.SpecHash(w2)})
			}},
			{c.prefix + "delete", func() error { return p.Delete(ctx, owner, "aws-prod", "web") }},
		}...)
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

// normalise prints each distinct request once, in first-seen order: "## Op" then the body, keys sorted.
func normalise(t *testing.T, reqs []ecsemu.Request) []byte {
	t.Helper()
	var b bytes.Buffer
	seen := map[string]bool{}
	for _, r := range reqs {
		var v map[string]any
		if err := json.Unmarshal(r.Body, &v); err != nil {
			t.Fatalf("%s: body is not JSON: %v", r.Op, err)
		}
		if _, ok := v["clientToken"]; ok {
			v["clientToken"] = "<token>"
		}
		var enc bytes.Buffer
		e := json.NewEncoder(&enc)
		e.SetEscapeHTML(false)
		e.SetIndent("", "  ")
		if err := e.Encode(v); err != nil {
			t.Fatal(err)
		}
		body := bytes.TrimSpace(enc.Bytes())
		key := r.Op + string(body)
		if seen[key] {
			continue
		}
		seen[key] = true
		fmt.Fprintf(&b, "## %s\n%s\n\n", r.Op, body)
	}
	return b.Bytes()
}
