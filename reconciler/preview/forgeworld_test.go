package preview

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/repos"
	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/gitea"
	"github.com/berth-dev/berth/repos/forge/gitea/giteaemu"
	"github.com/berth-dev/berth/repos/forge/github"
	"github.com/berth-dev/berth/repos/forge/github/githubemu"
	"github.com/berth-dev/berth/repos/forge/gitlab"
	"github.com/berth-dev/berth/repos/forge/gitlab/gitlabemu"
)

// forgeComment is one comment as a forge emulator stores it.
type forgeComment struct {
	ID     int64
	Author string
	Body   string
}

// forgeFault is one kind of failure a forge emulator can serve, named for the test log.
type forgeFault struct {
	name string
	// inject makes the next count requests of target fail: "all" the reads of pull requests (listing and single
	// reads), or "get" the single read of change 1 only (the listing answers).
	inject func(target string, count int)
	// requests counts the requests of target the emulator has seen (faulted ones too).
	requests func(target string) int
	// timeout is true for a fault that answers only when the client gives up.
	timeout bool
}

// forgeDriver is the test's side of one forge emulator: the author's and the forge's actions, and what the
// emulator holds.
type forgeDriver struct {
	kind string
	// open opens a labelled change from the base repository with head sha; it returns its number.
	open func(author, sha string) int
	push func(n int, sha string)
	// close closes change n.
	close    func(n int)
	comments func(n int) []forgeComment
	// usage is what the emulator counted so far: requests served, and requests counted against the rate limit.
	usage func() (requests, counted int)
	// etags turns the emulator's ETags on the listing on or off (nil when they are always on).
	etags  func(on bool)
	faults []forgeFault
	// newForge makes a client of the emulator with the given timeout.
	newForge func(t testing.TB, timeout time.Duration) forge.Forge
}

// refSource is a treeSource that records the refs the controller asks for.
type refSource struct {
	*treeSource
	mu   sync.Mutex
	refs []string
}

func (s *refSource) FetchRef(ctx context.Context, ref, want string) (*repos.Snapshot, error) {
	s.mu.Lock()
	s.refs = append(s.refs, ref)
	s.mu.Unlock()
	return s.treeSource.FetchRef(ctx, ref, want)
}

func (s *refSource) asked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.refs...)
}

// forgeWorld is a world (tree source, fake provider, engine, router, fake clock) whose controller talks to the
// forge of d instead of GitHub.
type forgeWorld struct {
	*world
	d   forgeDriver
	src *refSource
}

// newForgeWorld is newWorld on forge kind ("github", "gitlab" or "gitea").
func newForgeWorld(t *testing.T, kind, previews string) *forgeWorld {
	t.Helper()
	fw := &forgeWorld{}
	fw.world = newWorld(t, previews, func(o *Options) {
		fw.src = &refSource{treeSource: o.Source.(*treeSource)}
		o.Source = fw.src
	})
	switch kind {
	case "github":
		fw.d = githubDriver(fw.world)
	case "gitlab":
		fw.d = gitlabDriver(t, fw.world)
	case "gitea":
		fw.d = giteaDriver(t, fw.world)
	default:
		t.Fatalf("no forge %q", kind)
	}
	fw.c.opts.Forge = fw.d.newForge(t, 5*time.Second)
	fw.c.report.Forge = kind
	return fw
}

// openChange opens a labelled change whose head is headCUE(image, greeting).
func (fw *forgeWorld) openChange(author, image, greeting string) (int, string) {
	s := sha(fw.d.kind + author + image + greeting)
	fw.src.setHead(s, headCUE(fw.previews, image, greeting))
	return fw.d.open(author, s), s
}

// pushChange moves change n to a new head with image and greeting.
func (fw *forgeWorld) pushChange(n int, image, greeting string) string {
	s := sha(fw.d.kind + image + greeting + "push")
	fw.src.setHead(s, headCUE(fw.previews, image, greeting))
	fw.d.push(n, s)
	return s
}

// berthComments are berth's comments on change n.
func (fw *forgeWorld) berthComments(n int) []forgeComment {
	var out []forgeComment
	for _, c := range fw.d.comments(n) {
		if strings.Contains(c.Body, forge.Marker("test", CommentKey)) {
			out = append(out, c)
		}
	}
	return out
}

// commitStatus is the state of berth's status of change n's preview on sha, read through the forge's client.
func (fw *forgeWorld) commitStatus(n int, sha string) forge.StatusState {
	fw.t.Helper()
	sts, err := fw.d.newForge(fw.t, 5*time.Second).Statuses(fw.ctx, sha)
	if err != nil {
		fw.t.Fatalf("statuses of %s: %v", sha, err)
	}
	return sts[fw.c.statusContext(fw.status(n).Environment)]
}

func githubDriver(w *world) forgeDriver {
	emu := w.emu
	d := forgeDriver{kind: "github",
		open: func(author, sha string) int {
			return emu.Open(githubemu.PR{Author: author, HeadRef: "feature", HeadSHA: sha, Labels: []string{"preview"}})
		},
		push:  func(n int, sha string) { emu.Push(n, sha) },
		close: emu.ClosePR,
		comments: func(n int) []forgeComment {
			var out []forgeComment
			for _, c := range emu.CommentsOn(n) {
				out = append(out, forgeComment{ID: c.ID, Body: c.Body})
			}
			return out
		},
		usage: emu.Requests,
		newForge: func(t testing.TB, timeout time.Duration) forge.Forge {
			f, err := github.New(github.Options{BaseURL: emu.URL(), Repository: "acme/shop", Token: "tok", Timeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			return f
		},
	}
	return d
}

func gitlabDriver(t *testing.T, w *world) forgeDriver {
	emu := gitlabemu.New(7, "acme/shop", "berth-bot", "tok")
	t.Cleanup(emu.Close)
	emu.AddMember("maintainer", 40)
	emu.AddMember("reader", 20)
	// The paths of the listing and of one merge request's read (GitLab's faults match a substring of the path).
	paths := map[string]string{"all": "/merge_requests", "get": "/merge_requests/1"}
	requests := func(target string) int {
		// Merge requests (listing and single reads), not merge request 1's notes.
		if target == "all" {
			return emu.Requests("merge_requests") - emu.Requests("merge_requests/1/")
		}
		return emu.Requests("merge_requests/1") - emu.Requests("merge_requests/1/")
	}
	fault := func(name string, f gitlabemu.Fault) forgeFault {
		return forgeFault{name: name, timeout: f.Hang, requests: requests, inject: func(target string, count int) {
			f := f
			f.Path, f.Count = paths[target], count
			emu.Inject(f)
		}}
	}
	html := "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"
	d := forgeDriver{kind: "gitlab",
		open: func(author, sha string) int {
			return int(emu.Open(gitlabemu.MR{Author: author, SHA: sha, SourceBranch: "feature", TargetBranch: "main",
				Labels: []string{"preview"}}))
		},
		push:  func(n int, sha string) { emu.Push(int64(n), sha) },
		close: func(n int) { emu.CloseMR(int64(n)) },
		comments: func(n int) []forgeComment {
			var out []forgeComment
			for _, c := range emu.Notes(int64(n)) {
				out = append(out, forgeComment{ID: c.ID, Author: c.Author, Body: c.Body})
			}
			return out
		},
		usage: func() (int, int) {
			// GitLab counts every authenticated answer but a 304 against the quota.
			return emu.Requests(""), 2000 - emu.Remaining()
		},
		faults: []forgeFault{
			fault("500", gitlabemu.Fault{Status: 500, Body: `{"message":"500 Internal Server Error"}`}),
			fault("502 HTML", gitlabemu.Fault{Status: 502, Body: html, ContentType: "text/html"}),
			fault("200 HTML", gitlabemu.Fault{Status: 200, Body: html, ContentType: "text/html"}),
			fault("200 empty", gitlabemu.Fault{Status: 200}),
			fault("truncated", gitlabemu.Fault{Truncate: true}),
			fault("hang", gitlabemu.Fault{Hang: true}),
			fault("401", gitlabemu.Fault{Status: 401, Body: `{"message":"401 Unauthorized"}`}),
			fault("403", gitlabemu.Fault{Status: 403, Body: `{"message":"403 Forbidden"}`}),
			fault("404", gitlabemu.Fault{Status: 404, Body: `{"message":"404 Not found"}`}),
			fault("429", gitlabemu.Fault{Status: 429, Body: `{"message":"429 Too Many Requests"}`,
				Header: http.Header{"Retry-After": {"60"}}}),
		},
		newForge: func(t testing.TB, timeout time.Duration) forge.Forge {
			f, err := gitlab.New(gitlab.Options{BaseURL: emu.APIURL(), Project: "acme/shop", Token: "tok", Timeout: timeout,
				Now: w.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			return f
		},
	}
	return d
}

func giteaDriver(t *testing.T, w *world) forgeDriver {
	emu := giteaemu.New("acme", "shop", "berth-bot", "tok")
	t.Cleanup(emu.Close)
	emu.Collaborator("maintainer", "write")
	emu.Collaborator("reader", "read")
	// Gitea's faults match a substring of "METHOD path": the listing's path is a prefix of a single read's.
	match := map[string]string{"all": "GET /repos/acme/shop/pulls", "get": "GET /repos/acme/shop/pulls/1"}
	fault := func(name string, f giteaemu.Fault) forgeFault {
		return forgeFault{name: name, timeout: f == giteaemu.FaultTimeout,
			requests: func(target string) int {
				if target == "all" {
					return emu.Requests("GET /pulls") + emu.Requests("GET /pulls/{n}")
				}
				return emu.Requests("GET /pulls/{n}")
			},
			inject: func(target string, count int) { emu.Fail(match[target], f, count) }}
	}
	d := forgeDriver{kind: "gitea",
		open: func(author, sha string) int {
			return int(emu.Open(giteaemu.PR{Author: author, HeadRef: "feature", HeadSHA: sha, BaseRef: "main",
				Labels: []string{"preview"}}))
		},
		push:  func(n int, sha string) { emu.Push(int64(n), sha) },
		close: func(n int) { emu.ClosePull(int64(n)) },
		comments: func(n int) []forgeComment {
			var out []forgeComment
			for _, c := range emu.Comments(int64(n)) {
				out = append(out, forgeComment{ID: c.ID, Author: c.User.Login, Body: c.Body})
			}
			return out
		},
		usage: func() (int, int) { return emu.Requests(""), giteaemu.DefaultRateLimit - emu.Remaining() },
		etags: emu.SetETags,
		faults: []forgeFault{
			fault("500", giteaemu.Fault5xx),
			fault("200 HTML", giteaemu.FaultHTML200),
			fault("502 HTML", giteaemu.FaultHTML502),
			fault("truncated", giteaemu.FaultTruncated),
			fault("timeout", giteaemu.FaultTimeout),
			fault("expired token", giteaemu.FaultExpired),
			fault("429", giteaemu.FaultRateLimit),
			fault("403 secondary", giteaemu.FaultSecondary),
		},
		newForge: func(t testing.TB, timeout time.Duration) forge.Forge {
			f, err := gitea.New(gitea.Options{BaseURL: emu.URL, Repository: "acme/shop", Token: "tok", Timeout: timeout,
				Now: w.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			return f
		},
	}
	return d
}
