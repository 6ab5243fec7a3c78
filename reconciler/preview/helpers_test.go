package preview

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/policies"
	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/fake"
	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/reconciler/internal/fakeclock"
	"github.com/berth-dev/berth/repos"
	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/github"
	"github.com/berth-dev/berth/repos/forge/github/githubemu"
	"github.com/berth-dev/berth/schema"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

type clockAdapter struct{ *fakeclock.Clock }

func (c clockAdapter) NewTimer(d time.Duration) reconciler.Timer { return c.Clock.NewTimer(d) }

// treeSource is a Source over directories: the base branch's tree, and one tree per head commit (what
// refs/pull/N/head would fetch). It counts head fetches.
type treeSource struct {
	t    testing.TB
	root string

	mu      sync.Mutex
	rev     int
	baseDir string
	heads   map[string]string // sha → dir
	fetches int
	fail    error // when set, Fetch fails
}

func newTreeSource(t testing.TB) *treeSource {
	return &treeSource{t: t, root: t.TempDir(), heads: map[string]string{}}
}

func (s *treeSource) write(name string, files map[string]string) string {
	s.t.Helper()
	dir := filepath.Join(s.root, name)
	for f, text := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	return dir
}

// setBase makes files the base branch's newest revision.
func (s *treeSource) setBase(files map[string]string) {
	s.mu.Lock()
	s.rev++
	rev := s.rev
	s.mu.Unlock()
	dir := s.write(fmt.Sprintf("base-%d", rev), files)
	s.mu.Lock()
	s.baseDir = dir
	s.mu.Unlock()
}

// setHead makes files the tree of head commit sha.
func (s *treeSource) setHead(sha string, files map[string]string) {
	dir := s.write("head-"+sha, files)
	s.mu.Lock()
	s.heads[sha] = dir
	s.mu.Unlock()
}

func (s *treeSource) Fetch(ctx context.Context) (*repos.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	return &repos.Snapshot{Revision: fmt.Sprintf("%040d", s.rev), Branch: "main", Dir: s.baseDir}, nil
}

func (s *treeSource) FetchRef(ctx context.Context, ref, want string) (*repos.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetches++
	dir, ok := s.heads[want]
	if !ok {
		return nil, fmt.Errorf("%s: commit %s not found", ref, want)
	}
	return &repos.Snapshot{Revision: want, Dir: dir}, nil
}

func (s *treeSource) Changes() <-chan struct{} { return nil }
func (s *treeSource) Notify()                  {}
func (s *treeSource) String() string           { return "tree:" + s.root }
func (s *treeSource) Close() error             { return nil }

// baseCUE is a repository with a staging environment and previews of labelled pull requests.
func baseCUE(previews string) map[string]string {
	return map[string]string{"berth.cue": `package berth

targets: local: {type: "docker"}
environments: staging: {branch: "main"}
workloads: web: {
	image:    "app:v1"
	provider: "local"
	replicas: 2
	env: GREETING: "hello"
	ports: [{port: 8080, public: true}]
}
` + previews}
}

const defaultPreviews = `previews: pr: {from: "staging", when: labels: ["preview"]}
`

// headCUE is baseCUE with the web workload's image and greeting changed (what override allows by default).
func headCUE(previews, image, greeting string) map[string]string {
	files := baseCUE(previews)
	files["berth.cue"] = strings.Replace(files["berth.cue"], `image:    "app:v1"`, `image:    "`+image+`"`, 1)
	files["berth.cue"] = strings.Replace(files["berth.cue"], `GREETING: "hello"`, `GREETING: "`+greeting+`"`, 1)
	return files
}

// world is a preview controller on the fake provider, a GitHub emulator and tree sources, with a fake clock.
type world struct {
	t      testing.TB
	clock  *fakeclock.Clock
	src    *treeSource
	emu    *githubemu.Server
	forge  *github.Forge
	prov   *fake.Provider
	engine *reconciler.Engine
	c      *Controller
	router *Router
	ctx    context.Context
	// previews is the base's previews section, which heads repeat unchanged.
	previews string
}

func newWorld(t testing.TB, previews string, mod func(*Options)) *world {
	t.Helper()
	w := &world{t: t, clock: fakeclock.New(t0), src: newTreeSource(t), prov: fake.New(), router: NewRouter(), previews: previews}
	w.src.setBase(baseCUE(previews))
	w.emu = githubemu.New("acme", "shop")
	t.Cleanup(w.emu.Close)
	w.emu.SetNow(w.clock.Now)
	w.emu.AddToken("tok", "berth-bot")
	w.emu.AddCollaborator("berth-bot", "write")
	w.emu.AddCollaborator("maintainer", "write")
	w.emu.AddCollaborator("reader", "read")
	f, err := github.New(github.Options{BaseURL: w.emu.URL(), Repository: "acme/shop", Token: "tok", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w.forge = f
	w.engine, err = reconciler.NewEngine(reconciler.Options{Instance: "test",
		Providers: func(schema.Target, providers.Options) (providers.Provider, error) { return w.prov, nil },
		Evaluate:  func(*schema.Config, string, policies.Options) []policies.Finding { return nil },
		Clock:     clockAdapter{w.clock}})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Name: "shop", Instance: "test", Source: w.src, Forge: f, Engine: w.engine, Clock: clockAdapter{w.clock},
		Router: w.router, RouterPort: 8480, HostKey: []byte("test-key")}
	if mod != nil {
		mod(&o)
	}
	w.c, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w.ctx = ctx
	return w
}

// sync runs one pass and waits for every worker it started.
func (w *world) sync() {
	w.t.Helper()
	w.c.pass(w.ctx)
	w.c.wg.Wait()
}

// open opens a labelled pull request from the base repository whose head is headCUE(image, greeting).
func (w *world) open(pr githubemu.PR, image, greeting string) int {
	w.t.Helper()
	if pr.HeadSHA == "" {
		pr.HeadSHA = sha(image + greeting + pr.Author + pr.HeadRef)
	}
	w.src.setHead(pr.HeadSHA, headCUE(w.previews, image, greeting))
	if pr.Labels == nil {
		pr.Labels = []string{"preview"}
	}
	return w.emu.Open(pr)
}

// push moves pull request n to a new head with image and greeting.
func (w *world) push(n int, image, greeting string) string {
	s := sha(fmt.Sprint(n, image, greeting))
	w.src.setHead(s, headCUE(w.previews, image, greeting))
	w.emu.Push(n, s)
	return s
}

func sha(seed string) string {
	var b strings.Builder
	for i := 0; b.Len() < 40; i++ {
		fmt.Fprintf(&b, "%x", (len(seed)*31+i*7+int(seed[i%len(seed)]))%16)
	}
	return b.String()
}

// status is pull request n's preview status.
func (w *world) status(n int) Status {
	for _, s := range w.c.Report().Previews {
		if s.Number == n {
			return s
		}
	}
	return Status{}
}

// running is what the fake provider runs for pull request n's preview: workload → image.
func (w *world) running(n int) map[string]string {
	w.t.Helper()
	obs, err := w.prov.List(w.ctx, providers.Owner{Instance: "test", Environment: schema.PreviewName(n), Preview: n}, "local")
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]string{}
	for _, o := range obs {
		out[o.Workload] = o.Spec.Image
	}
	return out
}

// comments are berth's comments on pull request n.
func (w *world) comments(n int) []githubemu.Comment {
	var out []githubemu.Comment
	for _, c := range w.emu.CommentsOn(n) {
		if strings.Contains(c.Body, forge.Marker("test", CommentKey)) {
			out = append(out, c)
		}
	}
	return out
}
