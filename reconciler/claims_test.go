package reconciler

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers/fake"
	"github.com/berth-dev/berth/reconciler/internal/fakeclock"
	"github.com/berth-dev/berth/repos"
)

func TestClaims(t *testing.T) {
	c := NewClaims()
	if h, ok := c.Claim("prod", "a"); !ok || h != "a" {
		t.Fatalf("first claim: %s %v", h, ok)
	}
	if h, ok := c.Claim("prod", "a"); !ok || h != "a" {
		t.Fatal("a holder claims again")
	}
	if h, ok := c.Claim("prod", "b"); ok || h != "a" {
		t.Fatalf("second source got prod: %s %v", h, ok)
	}
	c.Release("prod", "b") // not the holder: nothing happens
	if _, ok := c.Claim("prod", "b"); ok {
		t.Fatal("release by a non-holder freed the claim")
	}
	c.Release("prod", "a")
	if _, ok := c.Claim("prod", "b"); !ok {
		t.Fatal("released claim not free")
	}
}

// runOnce runs one pass of a controller and stops it.
func runOnce(t *testing.T, c *Controller) {
	t.Helper()
	idle := make(chan struct{}, 10)
	c.idle = func() { idle <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-idle:
	case <-time.After(waitLimit):
		t.Fatal("controller not idle")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Two sources declaring the same environment: the first applies it, the second is blocked with a clear error and
// changes nothing. A source reading a subdirectory, with an explicit environment list, applies only those.
func TestControllerClaimsPathAndEnvironments(t *testing.T) {
	provs := map[string]*fake.Provider{"local": fake.New(), "remote": fake.New()}
	eng := newTestEngine(t, provs, nil)
	root := t.TempDir()
	write := func(rel, body string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a/config.txt", "target local fake\nenv prod main\nworkload prod web local image=app:1\n")
	write("deploy/b/config.txt", "target local fake\nenv prod main\nenv qa main\nworkload prod db local image=db:1\nworkload qa qa local image=qa:1\n")
	claims := NewClaims()
	newCtrl := func(name, path string, envs []string) *Controller {
		src := &fakeSource{changes: make(chan struct{}), snap: &repos.Snapshot{Revision: name + "1", Branch: "main", Dir: root}}
		c, err := NewController(ControllerOptions{Name: name, Source: src, Engine: eng, Path: path, Environments: envs,
			Claims: claims, Clock: clockAdapter{fakeclock.New(t0)}, Load: loadText, Rand: rand.New(rand.NewPCG(1, 2)).Float64})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := newCtrl("a", "a", nil)
	runOnce(t, a)
	b := newCtrl("b", "deploy/b", []string{"prod", "qa"})
	runOnce(t, b)

	if !provs["local"].Has("web") || provs["local"].Has("db") || !provs["local"].Has("qa") {
		t.Fatalf("want web (source a) and qa (source b) applied, db not: web=%v db=%v qa=%v",
			provs["local"].Has("web"), provs["local"].Has("db"), provs["local"].Has("qa"))
	}
	st := b.Status()
	if st.Name != "b" || st.Path != "deploy/b" || len(st.Environments) != 2 {
		t.Fatalf("status = %+v", st)
	}
	prod := st.Environments[0]
	if prod.Name != "prod" || prod.Phase != PhaseBlocked || len(prod.Errors) != 1 ||
		!strings.Contains(prod.Errors[0].Message, "environment prod is already applied by source a") {
		t.Fatalf("prod on the second source = %+v", prod)
	}
	if qa := st.Environments[1]; qa.Phase != PhaseReady {
		t.Fatalf("qa = %+v", qa)
	}
	if _, err := NewController(ControllerOptions{Source: &fakeSource{}, Engine: eng, Path: "../x"}); err == nil {
		t.Fatal("a path escaping the repository was accepted")
	}
}
