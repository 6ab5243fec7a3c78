package azure_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure/aciemu"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestGoldenRequests pins the exact mutating requests berth sends for the reference workload: on create, then on a
// rollout to a new image (make before break: each new group is created before the old one of its index goes).
func TestGoldenRequests(t *testing.T) {
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	p := newProvider(t, emu)
	owner := providers.Owner{Instance: "golden", Environment: "prod"}
	w := referenceWorkload("web")
	w.Env["API_TOKEN"] = "s3cret-value"
	ctx := context.Background()

	if err := p.Apply(ctx, providers.Desired{Owner: owner, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "create.golden", emu.Requests())
	emu.ResetRequests()

	w.Image = "ghcr.io/berth-dev/quickstart:2"
	if err := p.Apply(ctx, providers.Desired{Owner: owner, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "rollout.golden", emu.Requests())
}

// checkGolden renders the mutating requests (PUT, DELETE) as "METHOD path" plus the body with sorted keys, secure
// values replaced, and compares with testdata/name.
func checkGolden(t *testing.T, name string, reqs []aciemu.Request) {
	t.Helper()
	var b bytes.Buffer
	for _, r := range reqs {
		if r.Method == "GET" {
			continue
		}
		fmt.Fprintf(&b, "%s %s  # %s\n", r.Method, r.Path, r.Op)
		if len(r.Body) > 0 {
			var v any
			if err := json.Unmarshal(r.Body, &v); err != nil {
				t.Fatal(err)
			}
			redact(v)
			out, _ := json.MarshalIndent(v, "", "  ")
			b.Write(out)
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	if bytes.Contains(b.Bytes(), []byte("s3cret-value")) {
		t.Fatal("a secure value reached the golden file")
	}
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(want, b.Bytes()) {
		t.Errorf("%s differs (go test -update rewrites it); got:\n%s", path, b.String())
	}
}

// redact replaces secureValue fields, whose contents are volatile and secret.
func redact(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "secureValue" {
				x[k] = "<secure>"
				continue
			}
			redact(e)
		}
	case []any:
		for _, e := range x {
			redact(e)
		}
	}
}
