package webhook

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/tools/txtar"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/events/*.txtar")

// eventCase is one archive of testdata/events: the hook kind (a "kind:" line of the comment), the host's headers
// (without the signature, added here), the payload and the Event wanted.
type eventCase struct {
	path    string
	arc     *txtar.Archive
	kind    Kind
	headers http.Header
	body    []byte
	want    string
}

func loadEvents(t *testing.T) []eventCase {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "events", "*.txtar"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	var out []eventCase
	for _, p := range paths {
		a, err := txtar.ParseFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c := eventCase{path: p, arc: a, headers: http.Header{}}
		for line := range strings.SplitSeq(string(a.Comment), "\n") {
			if k, ok := strings.CutPrefix(line, "kind: "); ok {
				c.kind = Kind(strings.TrimSpace(k))
			}
		}
		for _, f := range a.Files {
			switch f.Name {
			case "headers":
				for line := range strings.SplitSeq(strings.TrimSpace(string(f.Data)), "\n") {
					name, value, ok := strings.Cut(line, ":")
					if !ok {
						t.Fatalf("%s: header line %q", p, line)
					}
					c.headers.Add(strings.TrimSpace(name), strings.TrimSpace(value))
				}
			case "body.json":
				c.body = f.Data
			case "want":
				c.want = strings.TrimSpace(string(f.Data))
			}
		}
		if !knownKind(c.kind) || c.body == nil {
			t.Fatalf("%s: no kind or body", p)
		}
		out = append(out, c)
	}
	return out
}

func (e Event) golden() string {
	return fmt.Sprintf("kind=%s change=%d name=%s", e.Kind, e.Change, e.Name)
}

// TestClassifyPayloads classifies real payload shapes of each host (testdata/events, -update rewrites want).
func TestClassifyPayloads(t *testing.T) {
	for _, c := range loadEvents(t) {
		t.Run(filepath.Base(c.path), func(t *testing.T) {
			got := Classify(c.kind, c.headers, c.body).golden()
			if *update {
				for i := range c.arc.Files {
					if c.arc.Files[i].Name == "want" {
						c.arc.Files[i].Data = []byte(got + "\n")
					}
				}
				if err := os.WriteFile(c.path, txtar.Format(c.arc), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

// events records OnEvent calls.
type events struct {
	mu  sync.Mutex
	got []Event
}

func (e *events) on(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, ev)
}

func (e *events) take() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.got
	e.got = nil
	return g
}

// TestReceiverEvents posts each payload, signed, to a Receiver with OnEvent and to one without: pushes notify
// (and reach OnEvent), change, comment and status events reach OnEvent with 202, or are ignored without it, and
// other events are ignored.
func TestReceiverEvents(t *testing.T) {
	for _, c := range loadEvents(t) {
		t.Run(filepath.Base(c.path), func(t *testing.T) {
			want := Classify(c.kind, c.headers, c.body)
			hdr := goodHeaders(c.kind, testSecret, c.body)
			for _, name := range []string{"X-GitHub-Event", "X-Gitlab-Event", "X-Gitea-Event", "X-Event-Key"} {
				hdr.Del(name)
			}
			for k, v := range c.headers {
				hdr[k] = v
			}
			for _, withCallback := range []bool{true, false} {
				var evs events
				opts := Options{}
				if withCallback {
					opts.OnEvent = evs.on
				}
				f := newFixture(t, []Hook{{Source: "app", Kind: c.kind, Secret: []byte(testSecret)}}, opts)
				w := f.post("app", hdr, c.body)
				accepted := want.Kind == EventPush || (withCallback && want.Kind != EventOther)
				if code := map[bool]int{true: http.StatusAccepted, false: http.StatusOK}[accepted]; w.Code != code {
					t.Fatalf("callback=%v: status %d, want %d", withCallback, w.Code, code)
				}
				if n := f.notes.count(); (n == 1) != (want.Kind == EventPush) || n > 1 {
					t.Fatalf("notified %d times for a %s", n, want.Kind)
				}
				got := evs.take()
				if !withCallback || !accepted {
					if len(got) != 0 {
						t.Fatalf("callback=%v: events %+v", withCallback, got)
					}
				} else if want.Source = "app"; len(got) != 1 || got[0] != want {
					t.Fatalf("events %+v, want %+v", got, want)
				}
				if accepted && want.Change != 0 && !strings.Contains(f.logs.String(), fmt.Sprintf("change=%d", want.Change)) {
					t.Fatalf("the change is not logged: %s", f.logs)
				}
			}
		})
	}
}

// A forged pull_request event (bad signature) reaches neither notify nor OnEvent; change events share the
// source's rate limit with pushes.
func TestEventsAuthenticatedAndLimited(t *testing.T) {
	var evs events
	f := newFixture(t, []Hook{{Source: "app", Kind: GitHub, Secret: []byte(testSecret), Burst: 2, Rate: 0.001}},
		Options{OnEvent: evs.on})
	body := []byte(`{"action":"opened","number":5}`)
	hdr := goodHeaders(GitHub, "wrong", body)
	hdr.Set("X-GitHub-Event", "pull_request")
	if w := f.post("app", hdr, body); w.Code != http.StatusForbidden || len(evs.take()) != 0 {
		t.Fatalf("forged: %d", w.Code)
	}
	hdr = goodHeaders(GitHub, testSecret, body)
	hdr.Set("X-GitHub-Event", "pull_request")
	for i, want := range []int{http.StatusAccepted, http.StatusAccepted, http.StatusTooManyRequests} {
		if w := f.post("app", hdr, body); w.Code != want {
			t.Fatalf("call %d: %d, want %d", i, w.Code, want)
		}
	}
	if got := evs.take(); len(got) != 2 || got[0].Change != 5 || got[0].Kind != EventChange {
		t.Fatalf("%+v", got)
	}
}

// Payloads that lie or break: hostile numbers, wrong types, huge bodies, long names never fail the
// classification and never yield a number outside 1..2³¹-1.
func TestClassifyHostile(t *testing.T) {
	gh := func(event string) http.Header { return http.Header{"X-Github-Event": {event}} }
	cases := []struct {
		kind Kind
		hdr  http.Header
		body string
		want string
	}{
		{GitHub, gh("pull_request"), `{"number":-4}`, "kind=change change=0 name=pull_request"},
		{GitHub, gh("pull_request"), `{"number":4294967296}`, "kind=change change=0 name=pull_request"},
		{GitHub, gh("pull_request"), `{"number":"42"}`, "kind=change change=0 name=pull_request"},
		{GitHub, gh("pull_request"), `{"number":1e400}`, "kind=change change=0 name=pull_request"},
		{GitHub, gh("pull_request"), `not json`, "kind=change change=0 name=pull_request"},
		{GitHub, gh("pull_request"), `{"pull_request":{"number":9}}`, "kind=change change=9 name=pull_request"},
		{GitHub, gh("issue_comment"), `{"issue":{"number":3,"pull_request":null}}`, "kind=other change=0 name=issue_comment"},
		{GitHub, gh("issue_comment"), `garbage`, "kind=comment change=0 name=issue_comment"},
		{GitHub, gh("check_run"), `{"check_run":{"pull_requests":[{"number":2},{"number":3}]}}`, "kind=status change=2 name=check_run"},
		{GitHub, gh("workflow_run"), `{"workflow_run":{"pull_requests":[{"number":6}]}}`, "kind=status change=6 name=workflow_run"},
		{GitHub, gh(strings.Repeat("é", 40)), `{}`, "kind=other change=0 name=" + strings.Repeat("é", 32)},
		{GitHub, gh("pull_request\xff"), `{}`, "kind=other change=0 name=pull_request\uFFFD"},
		{GitLab, http.Header{"X-Gitlab-Event": {"Note Hook"}}, `{"object_attributes":{"noteable_type":"MergeRequest"}}`, "kind=comment change=0 name=Note Hook"},
		{GitLab, http.Header{"X-Gitlab-Event": {"Note Hook"}}, `[]`, "kind=comment change=0 name=Note Hook"},
		{GitLab, http.Header{"X-Gitlab-Event": {"System Hook"}}, `[]`, "kind=other change=0 name=System Hook"},
		{GitLab, http.Header{"X-Gitlab-Event": {"Merge Request Hook"}}, `{"object_attributes":{"iid":0}}`, "kind=change change=0 name=Merge Request Hook"},
		{Gitea, http.Header{"X-Gitea-Event": {"issues"}}, `{}`, "kind=other change=0 name=issues"},
		{Gitea, http.Header{"X-Gitea-Event-Type": {"pull_request_assign"}}, `{"number":4}`, "kind=change change=4 name=pull_request_assign"},
		{Generic, http.Header{"X-Berth-Event": {"pull_request"}}, `{}`, "kind=push change=0 name=pull_request"},
		{Kind("svn"), http.Header{}, `{}`, "kind=other change=0 name="},
	}
	for _, c := range cases {
		if got := Classify(c.kind, c.hdr, []byte(c.body)).golden(); got != c.want {
			t.Errorf("%s %v %s:\ngot  %s\nwant %s", c.kind, c.hdr, c.body, got, c.want)
		}
	}
	// Past the parse bound only the headers count.
	big := append([]byte(`{"number":7,"pad":"`), bytes.Repeat([]byte("a"), maxParse)...)
	big = append(big, `"}`...)
	if got := Classify(GitHub, gh("pull_request"), big); got.Kind != EventChange || got.Change != 0 {
		t.Errorf("a body past the bound: %+v", got)
	}
}
