package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/aws/ecsemu"
	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/reconciler/preview"
	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/github"
	"github.com/berth-dev/berth/repos/forge/github/githubemu"
	"github.com/berth-dev/berth/schema"
)

// previewWorld is one berth serve following a file:// repository with a GitHub emulator as its forge, the Docker
// engine and an ECS emulator as its runtimes.
type previewWorld struct {
	t        testing.TB
	eng      *engine
	ecs      *ecsemu.Server
	emu      *githubemu.Server
	ci       forge.Forge // the CI's token: sets ci/build, reads statuses
	repo     *gitRepo
	instance string
	ctrl     *controller
	config   string
	router   int // the preview router's port
	staging  string
	prod     string
	awsEnv   []string
	// cloud puts staging's api (and so the previews') on ECS; without it staging is web on Docker only.
	cloud bool
}

const (
	previewRepo  = "acme/shop"
	previewLabel = "preview"
	ecsCluster   = "berth-e2e"
)

// previewSpec is what a commit of the test repository declares.
type previewSpec struct {
	greeting     string // staging's web (and so the previews')
	prodGreeting string
	prodWorker   bool
}

func (w *previewWorld) cue(s previewSpec) string {
	web := func(hostPort, greeting string) string {
		return fmt.Sprintf(`web: {
		image: %q
		args: ["serve"]
		provider: "local"
		env: GREETING: %q
		ports: [{name: "http", port: 8080, public: true, hostPort: %s}]
		health: {http: {path: "/healthz", port: 8080}, interval: "1s", timeout: "1s", retries: 3}
	}`, exampleImage, greeting, hostPort)
	}
	api := ""
	if w.cloud {
		api = fmt.Sprintf(`api: {image: %q, command: ["/app"], args: ["work"], provider: "aws", env: TAG: "1"}`, exampleImage)
	}
	worker := ""
	if s.prodWorker {
		worker = fmt.Sprintf(`
	worker: {image: %q, args: ["work"], provider: "local", env: WORK_INTERVAL: "1s"}`, exampleImage)
	}
	return fmt.Sprintf(`package berth

targets: {
	local: {type: "docker", publicAddress: "127.0.0.1"}
	aws: {type: "aws", region: "eu-west-1", cluster: %q, subnets: ["subnet-0e2e"], endpoint: %q}
}
environments: staging: {branch: "main", workloads: {
	%s
	%s
}}
environments: production: {branch: "main", workloads: {
	%s%s
}}
previews: pr: {
	from: "staging"
	when: labels: [%q]
	gate: statuses: ["ci/build"]
	forks: "approve-each-commit"
}
`, ecsCluster, w.ecs.URL(), web(w.staging, s.greeting), api, web(w.prod, s.prodGreeting), worker, previewLabel)
}

// newPreviewWorld starts everything; hook adds a webhook to the source (the forge then polls every forgeInterval);
// cloud puts a workload of staging on the ECS emulator.
func newPreviewWorld(t testing.TB, forgeInterval string, hook, cloud bool) *previewWorld {
	t.Helper()
	w := &previewWorld{t: t, eng: newEngine(t), instance: fmt.Sprintf("pv%d", time.Now().UnixNano()%1_000_000_000),
		staging: freePort(t), prod: freePort(t), cloud: cloud}
	t.Cleanup(func() { w.eng.cleanup(w.instance) })
	aws := map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
		"AWS_REGION": "eu-west-1",
	}
	for k, v := range aws {
		t.Setenv(k, v) // the test's own provider reads the emulator too
		w.awsEnv = append(w.awsEnv, k+"="+v)
	}
	for _, k := range []string{"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECS"} {
		t.Setenv(k, "")
	}
	w.ecs = ecsemu.New(ecsemu.Options{Region: "eu-west-1", Clusters: []string{ecsCluster}})
	t.Cleanup(w.ecs.Close)

	owner, name, _ := strings.Cut(previewRepo, "/")
	w.emu = githubemu.New(owner, name)
	t.Cleanup(w.emu.Close)
	w.emu.AddToken("berth-token", "berth-bot")
	w.emu.AddCollaborator("berth-bot", "write")
	w.emu.AddToken("ci-token", "ci")
	w.emu.AddCollaborator("ci", "write")
	ci, err := github.New(github.Options{BaseURL: w.emu.URL(), Repository: previewRepo, Token: "ci-token"})
	if err != nil {
		t.Fatal(err)
	}
	w.ci = ci

	w.repo = newGitRepo(t)
	w.repo.write(map[string]string{"berth.cue": w.cue(previewSpec{greeting: "staging", prodGreeting: "prod"})})
	w.repo.commit("staging and production")

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "github.token"), []byte("berth-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hook.secret"), []byte(benchHookSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	routerPort, _ := strconv.Atoi(freePort(t))
	w.router = routerPort
	// The previews' host ports: a block of 20 above 30000 that does not hold the router's port.
	from := 30000 + int(time.Now().UnixNano()/1000%1000)*20
	webhook := ""
	if hook {
		webhook = `webhook: {kind: "github", secret: {file: "hook.secret"}, rate: 100, burst: 100}`
	}
	w.config = filepath.Join(dir, "berth-serve.cue")
	if err := os.WriteFile(w.config, []byte(fmt.Sprintf(`
sources: shop: {
	url: %q
	interval: "2s"
	%s
	forge: {kind: "github", url: %q, repository: %q, token: {file: "github.token"}, interval: %q}
}
previews: {listen: "127.0.0.1:%d", domain: "localhost", ports: {from: %d, to: %d}}
`, w.repo.url(), webhook, w.emu.URL(), previewRepo, forgeInterval, routerPort, from, from+19)), 0o644); err != nil {
		t.Fatal(err)
	}
	w.ctrl = startPreviewController(t, w.instance, w.config, t.TempDir(), w.awsEnv)
	return w
}

// startPreviewController is startController with --config and extra environment (the emulated cloud's test
// credentials).
func startPreviewController(t testing.TB, instance, config, dataDir string, env []string) *controller {
	t.Helper()
	return startControllerEnv(t, t, instance, "", dataDir, env, "--config", config)
}

// headCommit commits spec on a side branch made from main's tip, points refs/pull/n/head at it, and returns its SHA.
// n 0 makes no ref (the caller makes it once it knows the number).
func (w *previewWorld) headCommit(branch string, spec previewSpec, n int) string {
	w.t.Helper()
	r := w.repo
	if r.git("branch", "--list", branch) == "" {
		r.git("checkout", "-q", "-b", branch, "main")
	} else {
		r.git("checkout", "-q", branch)
	}
	r.write(map[string]string{"berth.cue": w.cue(spec)})
	sha := r.commit(branch + ": " + spec.greeting + "/" + spec.prodGreeting)
	r.git("checkout", "-q", "main")
	if n > 0 {
		w.pullRef(n, sha)
	}
	return sha
}

func (w *previewWorld) pullRef(n int, sha string) {
	w.repo.git("update-ref", fmt.Sprintf("refs/pull/%d/head", n), sha)
}

// previews reads /api/v1/previews.
func (w *previewWorld) previews() (*ServerPreviews, error) {
	resp, err := http.Get(w.ctrl.api + previewsPath)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out ServerPreviews
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("previews: %v: %s", err, b)
	}
	if len(out.Sources) != 1 {
		return nil, fmt.Errorf("previews: want one source, got %d", len(out.Sources))
	}
	return &out, nil
}

func (w *previewWorld) previewOf(n int) (preview.Status, string) {
	all, err := w.previews()
	if err != nil {
		return preview.Status{}, err.Error()
	}
	for _, p := range all.Sources[0].Previews {
		if p.Number == n {
			return p, fmt.Sprintf("%s (%s) errors %v; last error %q", p.State, p.Reason, p.Errors, all.Sources[0].LastError)
		}
	}
	return preview.Status{}, fmt.Sprintf("pull request %d not listed; last error %q", n, all.Sources[0].LastError)
}

// berthComments are the comments berth-bot wrote on pull request n with the preview marker (the plan comments
// have markers of their own).
func (w *previewWorld) berthComments(n int) []githubemu.Comment {
	marker := forge.Marker(w.instance, preview.CommentKey)
	var out []githubemu.Comment
	for _, c := range w.emu.CommentsOn(n) {
		if c.User == "berth-bot" && strings.Contains(c.Body, marker) {
			out = append(out, c)
		}
	}
	return out
}

var previewURL = regexp.MustCompile(`http://pr-[0-9]+-[a-z0-9]+\.localhost:[0-9]+/`)

// getHost fetches url, resolving every *.localhost name to 127.0.0.1 as browsers do.
func getHost(url string) (string, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err == nil && strings.HasSuffix(host, ".localhost") {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		}}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), nil
}

// onECS lists the workloads of environment env the ECS emulator runs, through a provider of the test's own.
func (w *previewWorld) onECS(env string, n int) ([]string, error) {
	cfg, err := schema.Load(w.repo.dir)
	if err != nil {
		return nil, err
	}
	p, err := providers.New(cfg.Targets["aws"], providers.Options{Instance: w.instance})
	if err != nil {
		return nil, err
	}
	if cl, ok := p.(providers.Closer); ok {
		defer cl.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	obs, err := p.List(ctx, providers.Owner{Instance: w.instance, Environment: env, Preview: n}, "aws")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range obs {
		out = append(out, o.Workload)
	}
	if el, ok := p.(providers.EnvironmentLister); ok {
		refs, err := el.Environments(ctx, w.instance, "aws")
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			if r.Name == env {
				out = append(out, "env:"+r.Name)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// setCI sets ci/build on sha as the CI does.
func (w *previewWorld) setCI(sha string, state forge.StatusState) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.ci.SetStatus(ctx, forge.Status{SHA: sha, Context: "ci/build", State: state, Description: "build"}); err != nil {
		w.t.Fatal(err)
	}
}

// berthStatus is berth's own commit status of environment env on sha.
func (w *previewWorld) berthStatus(sha, env string) (forge.StatusState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sts, err := w.ci.Statuses(ctx, sha)
	return sts["berth/"+w.instance+"/"+env], err
}

// planSteps are the action/workload/target of each step line of a plan comment's diff block.
var planStepLine = regexp.MustCompile(`(?m)^  [+~>?-] (\S+) (\S+) (?:on|from \S+ to) (\S+)`)

func planSteps(body string) []string {
	var out []string
	for _, m := range planStepLine.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1]+" "+m[2]+" "+m[3])
	}
	return out
}

func appliedSteps(steps []reconciler.Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, string(s.Action)+" "+s.Workload+" "+s.Target)
	}
	return out
}

func TestPreviewEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test against the Docker engine, the ECS emulator and the GitHub emulator")
	}
	w := newPreviewWorld(t, "1s", false, true)
	waitFor(t, settle, "staging and production applied", func() (bool, string) {
		st, err := w.ctrl.status()
		if err != nil {
			return false, err.Error()
		}
		return applied(st, "staging") != "" && applied(st, "production") != "", envError(st, "staging") + envError(st, "production")
	})

	var n int
	var url, head string
	var commentID int64
	t.Run("opened, gated, then deployed", func(t *testing.T) {
		began := time.Now()
		lap := func(what string) { t.Logf("%s after %s", what, time.Since(began).Round(10*time.Millisecond)) }
		head = w.headCommit("feature", previewSpec{greeting: "hello-pr", prodGreeting: "prod"}, 0)
		n = w.emu.Open(githubemu.PR{Title: "greet", Author: "octocat", HeadRef: "feature", HeadSHA: head, BaseRef: "main",
			Labels: []string{previewLabel}})
		w.pullRef(n, head)
		waitFor(t, settle, "gated on ci/build", func() (bool, string) {
			p, what := w.previewOf(n)
			return p.State == preview.StateGated, what
		})
		lap("gated on ci/build")
		waitFor(t, settle, "berth's status pending while gated", func() (bool, string) {
			s, err := w.berthStatus(head, schema.PreviewName(n))
			return s == forge.StatusPending, fmt.Sprint(s, err)
		})
		lap("berth's status pending while gated")
		if got, _ := w.onECS(schema.PreviewName(n), n); len(got) != 0 {
			t.Fatalf("a gated preview runs on ECS: %v", got)
		}
		if cs := w.eng.containers(w.instance, ""); slices.ContainsFunc(cs, func(c container.Summary) bool {
			return c.Labels[providers.LabelPreview] != ""
		}) {
			t.Fatal("a gated preview runs on Docker")
		}
		w.setCI(head, forge.StatusSuccess)
		waitFor(t, settle, "preview ready", func() (bool, string) {
			p, what := w.previewOf(n)
			return p.State == preview.StateReady, what
		})
		lap("preview ready")
		waitFor(t, settle, "berth's status success", func() (bool, string) {
			s, err := w.berthStatus(head, schema.PreviewName(n))
			return s == forge.StatusSuccess, fmt.Sprint(s, err)
		})
		lap("berth's status success")
		waitFor(t, settle, "one comment with a URL", func() (bool, string) {
			cs := w.berthComments(n)
			if len(cs) != 1 {
				return false, fmt.Sprintf("%d comments", len(cs))
			}
			url = previewURL.FindString(cs[0].Body)
			commentID = cs[0].ID
			return url != "", cs[0].Body
		})
		lap("one comment with a URL")
		withURL := 0
		for _, c := range w.emu.CommentsOn(n) {
			if c.User == "berth-bot" && previewURL.MatchString(c.Body) {
				withURL++
			}
		}
		if withURL != 1 {
			t.Fatalf("%d berth comments carry a preview URL, want 1", withURL)
		}
		waitFor(t, settle, "the URL answers with the PR's greeting", func() (bool, string) {
			body, err := getHost(url)
			return err == nil && strings.Contains(body, "hello-pr from"), fmt.Sprint(body, err)
		})
		lap("the URL answers with the PR's greeting")
		waitFor(t, settle, "the preview's api on ECS", func() (bool, string) {
			got, err := w.onECS(schema.PreviewName(n), n)
			return slices.Equal(got, []string{"api", "env:" + schema.PreviewName(n)}), fmt.Sprint(got, err)
		})
		lap("the preview's api on ECS")
		if body, err := get("http://127.0.0.1:" + w.staging + "/"); err != nil || !strings.Contains(body, "staging from") {
			t.Fatalf("staging says %q, %v beside its preview", body, err)
		}
	})
	if n == 0 || url == "" {
		t.FailNow()
	}

	t.Run("push updates the preview and edits the comment", func(t *testing.T) {
		head = w.headCommit("feature", previewSpec{greeting: "hello-again", prodGreeting: "prod"}, n)
		w.setCI(head, forge.StatusSuccess)
		w.emu.Push(n, head)
		waitFor(t, settle, "berth's status success on the new head", func() (bool, string) {
			s, err := w.berthStatus(head, schema.PreviewName(n))
			return s == forge.StatusSuccess, fmt.Sprint(s, err)
		})
		waitFor(t, settle, "the URL answers with the new greeting", func() (bool, string) {
			body, err := getHost(url)
			return err == nil && strings.Contains(body, "hello-again from"), fmt.Sprint(body, err)
		})
		waitFor(t, settle, "the same comment edited for the new head", func() (bool, string) {
			cs := w.berthComments(n)
			if len(cs) != 1 {
				return false, fmt.Sprintf("%d comments", len(cs))
			}
			return cs[0].ID == commentID && strings.Contains(cs[0].Body, head[:12]) && strings.Contains(cs[0].Body, url), cs[0].Body
		})
	})

	t.Run("berth previews and berth plan --pr", func(t *testing.T) {
		out, errOut, code := berthCmd(t, "previews", "--server", w.ctrl.api)
		if code != 0 || !strings.Contains(out, fmt.Sprintf("#%d", n)) || !strings.Contains(out, schema.PreviewName(n)) ||
			!strings.Contains(out, "ready") || !strings.Contains(out, url) {
			t.Fatalf("berth previews: exit %d\n%s%s", code, out, errOut)
		}
		cmd := exec.Command(binary(t), "plan", "--pr", strconv.Itoa(n), "--config", w.config, "--instance", w.instance)
		cmd.Env = append(hermeticEnv(t), w.awsEnv...)
		b, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(b), forge.Marker(w.instance, preview.CommentKey)) ||
			!strings.Contains(string(b), schema.PreviewName(n)) || !strings.Contains(string(b), head[:12]) {
			t.Fatalf("berth plan --pr %d: %v\n%s", n, err, b)
		}
	})

	t.Run("closed: everything gone, the comment says destroyed", func(t *testing.T) {
		w.emu.ClosePR(n)
		waitFor(t, settle, "nothing of the preview on Docker", func() (bool, string) {
			left := 0
			for _, c := range w.eng.containers(w.instance, "") {
				if c.Labels[providers.LabelEnvironment] == schema.PreviewName(n) || c.Labels[providers.LabelPreview] != "" {
					left++
				}
			}
			return left == 0, fmt.Sprintf("%d containers left", left)
		})
		waitFor(t, settle, "nothing of the preview on ECS", func() (bool, string) {
			got, err := w.onECS(schema.PreviewName(n), n)
			return err == nil && len(got) == 0, fmt.Sprint(got, err)
		})
		waitFor(t, settle, "the comment says destroyed", func() (bool, string) {
			cs := w.berthComments(n)
			return len(cs) == 1 && cs[0].ID == commentID && strings.Contains(cs[0].Body, "destroyed"), fmt.Sprint(cs)
		})
		if _, err := getHost(url); err == nil {
			t.Fatal("the preview's URL still answers")
		}
		if body, err := get("http://127.0.0.1:" + w.staging + "/"); err != nil || !strings.Contains(body, "staging from") {
			t.Fatalf("staging says %q, %v after its preview's teardown", body, err)
		}
	})

	t.Run("a fork waits for approval", func(t *testing.T) {
		sha := w.headCommit("mallory", previewSpec{greeting: "pwned", prodGreeting: "prod"}, 0)
		f := w.emu.Open(githubemu.PR{Title: "fork", Author: "mallory", HeadRef: "main", HeadRepo: "mallory/shop",
			HeadSHA: sha, BaseRef: "main", Labels: []string{previewLabel}})
		w.pullRef(f, sha)
		w.setCI(sha, forge.StatusSuccess)
		waitFor(t, settle, "awaiting approval", func() (bool, string) {
			p, what := w.previewOf(f)
			return p.State == preview.StateAwaitingApproval, what
		})
		waitFor(t, settle, "the fork is told it waits for approval", func() (bool, string) {
			cs := w.berthComments(f)
			return len(cs) == 1 && strings.Contains(cs[0].Body, preview.ApproveCommand), fmt.Sprint(cs)
		})
		// Two more passes (the forge interval is 1s): still nothing anywhere.
		checked := time.Now()
		waitFor(t, settle, "two more passes", func() (bool, string) {
			all, err := w.previews()
			if err != nil {
				return false, err.Error()
			}
			return all.Sources[0].CheckedAt.After(checked.Add(2 * time.Second)), all.Sources[0].CheckedAt.String()
		})
		for _, c := range w.eng.containers(w.instance, "") {
			if c.Labels[providers.LabelEnvironment] == schema.PreviewName(f) {
				t.Fatalf("the fork's preview runs on Docker: %s", c.Names)
			}
		}
		if got, err := w.onECS(schema.PreviewName(f), f); err != nil || len(got) != 0 {
			t.Fatalf("the fork's preview on ECS: %v %v", got, err)
		}
		w.emu.ClosePR(f)
	})

	t.Run("a pull request against production: plan comment, merge applies exactly it", func(t *testing.T) {
		spec := previewSpec{greeting: "staging", prodGreeting: "prod-v2", prodWorker: true}
		sha := w.headCommit("release", spec, 0)
		p := w.emu.Open(githubemu.PR{Title: "prod", Author: "octocat", HeadRef: "release", HeadSHA: sha, BaseRef: "main"})
		w.pullRef(p, sha)
		marker := forge.Marker(w.instance, "plan-production")
		var planned []string
		waitFor(t, settle, "the plan comment for production", func() (bool, string) {
			for _, c := range w.emu.CommentsOn(p) {
				if c.User == "berth-bot" && strings.Contains(c.Body, marker) && strings.Contains(c.Body, sha[:12]) {
					planned = planSteps(c.Body)
					return len(planned) > 0, c.Body
				}
			}
			return false, fmt.Sprint(w.emu.CommentsOn(p))
		})
		if !slices.Contains(planned, "create worker local") || !slices.Contains(planned, "update web local") {
			t.Fatalf("the plan comment's steps: %v", planned)
		}
		if len(w.berthComments(p)) != 0 {
			t.Fatal("a pull request without the label got a preview comment")
		}
		w.repo.git("merge", "-q", "--ff-only", "release")
		w.emu.Merge(p)
		var st *reconciler.Status
		waitFor(t, settle, "the merge applied to production", func() (bool, string) {
			var err error
			if st, err = w.ctrl.status(); err != nil {
				return false, err.Error()
			}
			return applied(st, "production") == sha, applied(st, "production") + envError(st, "production")
		})
		got := appliedSteps(lastApplySteps(st, "production"))
		if e := envOf(st, "production"); e.LastApply == nil || e.LastApply.Revision != sha {
			t.Fatalf("production's last apply is not of the merge: %+v", e.LastApply)
		}
		if strings.Join(got, "\n") != strings.Join(planned, "\n") {
			t.Fatalf("the controller applied\n  %s\nbut the plan comment said\n  %s", strings.Join(got, "\n  "), strings.Join(planned, "\n  "))
		}
		out, errOut, code := berthCmd(t, "status", "--server", w.ctrl.api)
		if code != 0 || !strings.Contains(out, "worker") {
			t.Fatalf("berth status: exit %d\n%s%s", code, out, errOut)
		}
		waitFor(t, settle, "production answers with the merged greeting", func() (bool, string) {
			body, err := get("http://127.0.0.1:" + w.prod + "/")
			return err == nil && strings.Contains(body, "prod-v2 from"), fmt.Sprint(body, err)
		})
	})
}
