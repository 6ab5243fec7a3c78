package githubemu

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// The real limits the emulator enforces.
const (
	CommentLimit       = 65536 // characters of an issue comment body; more is a 422
	StatusDescription  = 140   // characters of a status description (see doc.go: the docs are silent)
	StatusesPerContext = 1000  // statuses per SHA and context
	DefaultPerPage     = 30
	MaxPerPage         = 100
	DefaultQuota       = 5000
)

// FaultKind is an injected failure.
type FaultKind int

// Faults.
const (
	Fault500       FaultKind = iota + 1 // 500 with GitHub's JSON error body
	Fault502HTML                        // 502 with an HTML body (a proxy in front of the API)
	Fault200HTML                        // 200 with an HTML body (a captive portal or login page)
	FaultTruncated                      // 200 whose JSON body ends mid-document
	FaultEmpty                          // 200 with an empty body
	FaultTimeout                        // no answer until the client gives up
	Fault401                            // "Bad credentials"
	FaultSecondary                      // 403 secondary rate limit with Retry-After
	Fault429                            // 429 secondary rate limit with Retry-After
)

// Fault is injected into the next Count requests whose path and query contain Match (every request when empty).
type Fault struct {
	Kind  FaultKind
	Match string
	Count int
	// RetryAfter is sent with the secondary limits (default 60s).
	RetryAfter time.Duration
}

// PR is what a test opens.
type PR struct {
	Title    string
	Author   string
	HeadRef  string
	HeadSHA  string
	HeadRepo string // "owner/name"; empty is the base repository
	// ForkDeleted makes head.repo null, as GitHub answers once a fork is deleted.
	ForkDeleted bool
	BaseRef     string
	Draft       bool
	Labels      []string
}

type pull struct {
	PR
	number  int
	state   string
	merged  bool
	created time.Time
	updated time.Time
}

type status struct {
	ID          int64
	State       string
	Description string
	TargetURL   string
	Context     string
	Creator     string
	Created     time.Time
}

// issueEvent is one entry of an issue's events (GET /repos/{o}/{r}/issues/{n}/events).
type issueEvent struct {
	ID      int64
	Issue   int
	Actor   string
	Event   string // labeled, unlabeled, closed, reopened, merged
	Label   string
	Created time.Time
}

type comment struct {
	ID      int64
	Issue   int
	User    string
	Body    string
	Created time.Time
	Updated time.Time
}

// Server is a stateful GitHub REST emulator for one repository.
type Server struct {
	Owner, Repo string

	mu        sync.Mutex
	srv       *httptest.Server
	closing   chan struct{}
	closeOnce sync.Once
	now       func() time.Time
	pulls     map[int]*pull
	next      int
	perms     map[string]string // login → admin|write|read|none
	tokens    map[string]string // token → login
	statuses  map[string][]status
	comments  []*comment
	events    []*issueEvent
	nextID    int64
	faults    []Fault
	limit     int
	remain    int
	reset     time.Time
	requests  int
	counted   int

	apps      map[int64]*rsa.PublicKey // GitHub App id → the public half of its key
	installs  map[int64]installation   // installation id → its app and bot login
	appTokens map[string]appToken      // installation token → its login and expiry
	tokenTTL  time.Duration
	minted    int
}

type installation struct {
	app   int64
	login string
}

type appToken struct {
	login   string
	expires time.Time
}

// DefaultTokenTTL is how long an installation token lives (GitHub: one hour).
const DefaultTokenTTL = time.Hour

// New starts an emulator for owner/repo on loopback. Close it when done.
func New(owner, repo string) *Server {
	s := &Server{
		Owner: owner, Repo: repo,
		now:      time.Now,
		pulls:    map[int]*pull{},
		next:     1,
		perms:    map[string]string{},
		tokens:   map[string]string{},
		statuses: map[string][]status{},
		nextID:   1000,
		limit:    DefaultQuota,
		remain:   DefaultQuota,

		apps:      map[int64]*rsa.PublicKey{},
		installs:  map[int64]installation{},
		appTokens: map[string]appToken{},
		tokenTTL:  DefaultTokenTTL,
	}
	s.reset = s.now().Add(time.Hour)
	s.closing = make(chan struct{})
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the API base URL (with a trailing slash), as go-github's WithURLs wants it.
func (s *Server) URL() string { return s.srv.URL + "/" }

// Close stops the server.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// --- admin side ---

// AddToken makes token authenticate as login.
func (s *Server) AddToken(token, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = login
}

// ExpireToken makes token answer 401 from now on.
func (s *Server) ExpireToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, token)
}

// SetNow replaces the emulator's clock (time.Now): it decides token and JWT expiry and the times it stamps.
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// AddApp registers a GitHub App by its id and the public half of its private key: JWTs it signs are accepted.
func (s *Server) AddApp(id int64, key *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[id] = key
}

// AddInstallation installs app on the repository as installation id; its tokens authenticate as login (GitHub's
// "<app-slug>[bot]").
func (s *Server) AddInstallation(id, app int64, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.installs[id] = installation{app: app, login: login}
}

// SetTokenTTL sets how long installation tokens minted from now on live (DefaultTokenTTL).
func (s *Server) SetTokenTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenTTL = d
}

// Minted is how many installation tokens were minted.
func (s *Server) Minted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.minted
}

// RevokeAppTokens revokes every installation token: they answer 401 from now on.
func (s *Server) RevokeAppTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.appTokens)
}

// AddCollaborator gives login a permission: "admin", "write", "read" or "none" (a known user without access).
func (s *Server) AddCollaborator(login, permission string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perms[login] = permission
}

// Open opens a pull request and returns its number.
func (s *Server) Open(p PR) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.next
	s.next++
	if p.HeadSHA == "" {
		p.HeadSHA = fakeSHA(fmt.Sprint("head", n))
	}
	if p.BaseRef == "" {
		p.BaseRef = "main"
	}
	if p.Author == "" {
		p.Author = "octocat"
	}
	t := s.tick()
	s.pulls[n] = &pull{PR: p, number: n, state: "open", created: t, updated: t}
	return n
}

// ClosePR closes a pull request without merging it (a "closed" event by its author).
func (s *Server) ClosePR(n int) {
	s.edit(n, func(p *pull) { p.state = "closed"; s.event(n, p.Author, "closed", "") })
}

// Merge merges a pull request ("merged" and "closed" events by its author).
func (s *Server) Merge(n int) {
	s.edit(n, func(p *pull) {
		p.state, p.merged = "closed", true
		s.event(n, p.Author, "merged", "")
		s.event(n, p.Author, "closed", "")
	})
}

// Reopen reopens a closed, unmerged pull request (a "reopened" event by its author).
func (s *Server) Reopen(n int) {
	s.edit(n, func(p *pull) { p.state = "open"; s.event(n, p.Author, "reopened", "") })
}

// Push moves the head of a pull request to sha.
func (s *Server) Push(n int, sha string) { s.edit(n, func(p *pull) { p.HeadSHA = sha }) }

// DefaultLabeler is the login Label labels as. It has no permission unless the test gives it one
// (AddCollaborator).
const DefaultLabeler = "labeler"

// Label adds a label as DefaultLabeler.
func (s *Server) Label(n int, label string) { s.LabelAs(n, label, DefaultLabeler) }

// LabelAs adds a label as login, recording a "labeled" event (GitHub records one even when the label was already
// there, and changes nothing else).
func (s *Server) LabelAs(n int, label, login string) {
	s.edit(n, func(p *pull) {
		if !slices.Contains(p.Labels, label) {
			p.Labels = append(p.Labels, label)
		}
		s.event(n, login, "labeled", label)
	})
}

// Unlabel removes a label as DefaultLabeler.
func (s *Server) Unlabel(n int, label string) { s.UnlabelAs(n, label, DefaultLabeler) }

// UnlabelAs removes a label as login, recording an "unlabeled" event; a label the pull request does not have is
// left alone, as GitHub answers 404 and records nothing.
func (s *Server) UnlabelAs(n int, label, login string) {
	s.edit(n, func(p *pull) {
		i := slices.Index(p.Labels, label)
		if i < 0 {
			return
		}
		p.Labels = slices.Delete(p.Labels, i, i+1)
		s.event(n, login, "unlabeled", label)
	})
}

// event records an issue event; it is called with s.mu held, from edit (whose tick stamps it).
func (s *Server) event(n int, actor, kind, label string) {
	id := int64(len(s.events) + 1)
	s.events = append(s.events, &issueEvent{ID: id, Issue: n, Actor: actor, Event: kind, Label: label})
}

// AddComment adds a comment as login and returns its id.
func (s *Server) AddComment(n int, login, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addComment(n, login, body)
}

// Comment is one stored comment, for assertions.
type Comment struct {
	ID   int64
	User string
	Body string
}

// CommentsOn are the stored comments of a pull request, oldest first.
func (s *Server) CommentsOn(n int) []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Comment
	for _, c := range s.comments {
		if c.Issue == n {
			out = append(out, Comment{c.ID, c.User, c.Body})
		}
	}
	return out
}

// StatusCount is how many statuses were created for sha (every context).
func (s *Server) StatusCount(sha string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.statuses[sha])
}

// Inject queues a fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Count == 0 {
		f.Count = 1
	}
	s.faults = append(s.faults, f)
}

// ClearFaults drops every queued fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// SetQuota sets the remaining primary rate-limit quota.
func (s *Server) SetQuota(remaining int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remain = remaining
}

// Requests is how many requests reached the server; Counted how many of them counted against the quota.
func (s *Server) Requests() (all, counted int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.counted
}

// Remaining is the primary quota left.
func (s *Server) Remaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remain
}

func (s *Server) edit(n int, f func(*pull)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pulls[n]
	if p == nil {
		panic(fmt.Sprintf("githubemu: no pull request #%d", n))
	}
	before := len(s.events)
	f(p)
	p.updated = s.tick()
	for _, e := range s.events[before:] {
		e.Created = p.updated
	}
}

// tick is a strictly increasing clock, so that every edit changes updated_at (and so the ETag).
func (s *Server) tick() time.Time {
	t := s.now().UTC().Truncate(time.Second)
	for _, p := range s.pulls {
		if !p.updated.Before(t) {
			t = p.updated.Add(time.Second)
		}
	}
	return t
}

func (s *Server) addComment(n int, login, body string) int64 {
	s.nextID++
	t := s.now().UTC().Truncate(time.Second)
	s.comments = append(s.comments, &comment{ID: s.nextID, Issue: n, User: login, Body: body, Created: t, Updated: t})
	return s.nextID
}

func fakeSHA(seed string) string {
	h := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(h[:20])
}

// --- wire side ---

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	var fault *Fault
	for i := range s.faults {
		if f := &s.faults[i]; f.Count > 0 && strings.Contains(r.URL.RequestURI(), f.Match) {
			f.Count--
			ff := *f
			fault = &ff
			break
		}
	}
	s.mu.Unlock()
	if fault != nil && s.fail(w, r, fault) {
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	path := strings.TrimPrefix(r.URL.Path, "/api/v3")
	if seg := strings.Split(path, "/"); len(seg) == 5 && seg[1] == "app" && seg[2] == "installations" &&
		seg[4] == "access_tokens" && r.Method == http.MethodPost {
		s.mintToken(w, r, seg[3])
		return
	}
	if path == "/app" && r.Method == http.MethodGet {
		s.getApp(w, r)
		return
	}
	login, ok := s.auth(r)
	if !ok {
		s.rateHeaders(w)
		writeJSON(w, http.StatusUnauthorized, errBody("Bad credentials"))
		return
	}
	if _, app := s.appTokens[strings.TrimPrefix(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), "token ")]; app && path == "/user" {
		// GitHub refuses GET /user to an installation token.
		s.rateHeaders(w)
		writeJSON(w, http.StatusForbidden, map[string]any{"message": "Resource not accessible by integration",
			"documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user"})
		return
	}
	if s.remain <= 0 {
		s.rateHeaders(w)
		writeJSON(w, http.StatusForbidden, map[string]any{
			"message":           fmt.Sprintf("API rate limit exceeded for user %s.", login),
			"documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting",
		})
		return
	}
	prefix := "/repos/" + s.Owner + "/" + s.Repo + "/"
	seg := strings.Split(strings.TrimPrefix(path, prefix), "/")
	switch {
	case path == "/user" && r.Method == http.MethodGet:
		s.answer(w, r, http.StatusOK, map[string]any{"login": login, "id": idOf(login), "type": "User"})
	case !strings.HasPrefix(path, prefix):
		s.answer(w, r, http.StatusNotFound, errBody("Not Found"))
	case r.Method == http.MethodGet && len(seg) == 1 && seg[0] == "pulls":
		s.listPulls(w, r)
	case r.Method == http.MethodGet && len(seg) == 2 && seg[0] == "pulls":
		n, _ := strconv.Atoi(seg[1])
		if p := s.pulls[n]; p != nil {
			s.answer(w, r, http.StatusOK, s.pullJSON(p))
		} else {
			s.answer(w, r, http.StatusNotFound, errBody("Not Found"))
		}
	case r.Method == http.MethodGet && len(seg) == 3 && seg[0] == "collaborators" && seg[2] == "permission":
		s.permission(w, r, seg[1])
	case r.Method == http.MethodPost && len(seg) == 2 && seg[0] == "statuses":
		s.createStatus(w, r, seg[1], login)
	case r.Method == http.MethodGet && len(seg) == 3 && seg[0] == "commits" && seg[2] == "status":
		s.combined(w, r, seg[1])
	case len(seg) == 3 && seg[0] == "issues" && seg[2] == "comments":
		n, _ := strconv.Atoi(seg[1])
		if s.pulls[n] == nil {
			s.answer(w, r, http.StatusNotFound, errBody("Not Found"))
			return
		}
		if r.Method == http.MethodPost {
			s.createComment(w, r, n, login)
		} else {
			s.listComments(w, r, n)
		}
	case r.Method == http.MethodGet && len(seg) == 3 && seg[0] == "issues" && seg[2] == "events":
		n, _ := strconv.Atoi(seg[1])
		if s.pulls[n] == nil {
			s.answer(w, r, http.StatusNotFound, errBody("Not Found"))
			return
		}
		s.listEvents(w, r, n)
	case r.Method == http.MethodPatch && len(seg) == 3 && seg[0] == "issues" && seg[1] == "comments":
		id, _ := strconv.ParseInt(seg[2], 10, 64)
		s.editComment(w, r, id, login)
	default:
		s.answer(w, r, http.StatusNotFound, errBody("Not Found"))
	}
}

// fail serves a fault; it reports false when the request should go on (none do today).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, f *Fault) bool {
	retry := f.RetryAfter
	if retry == 0 {
		retry = time.Minute
	}
	switch f.Kind {
	case Fault500:
		writeJSON(w, http.StatusInternalServerError, errBody("Server Error"))
	case Fault502HTML:
		writeRaw(w, http.StatusBadGateway, "text/html", "<html><body><h1>502 Bad Gateway</h1><p>Unicorn!</p></body></html>")
	case Fault200HTML:
		writeRaw(w, http.StatusOK, "text/html; charset=utf-8", "<!DOCTYPE html><html><head><title>Sign in</title></head><body>Sign in to continue</body></html>")
	case FaultTruncated:
		writeRaw(w, http.StatusOK, "application/json; charset=utf-8", `[{"number":1,"state":"open","title":"trunc`)
	case FaultEmpty:
		writeRaw(w, http.StatusOK, "application/json; charset=utf-8", "")
	case FaultTimeout:
		// Until the client gives up (a request whose body was not read is not told its connection closed) or
		// the emulator closes.
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
	case Fault401:
		writeJSON(w, http.StatusUnauthorized, errBody("Bad credentials"))
	case FaultSecondary, Fault429:
		code := http.StatusForbidden
		if f.Kind == Fault429 {
			code = http.StatusTooManyRequests
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(retry/time.Second)))
		writeJSON(w, code, map[string]any{
			"message":           "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
			"documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
		})
	default:
		return false
	}
	return true
}

func (s *Server) auth(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(h, "token ")
	}
	if !ok {
		return "", false
	}
	if login, ok := s.tokens[tok]; ok {
		return login, true
	}
	at, ok := s.appTokens[tok]
	if !ok || !s.now().Before(at.expires) {
		return "", false
	}
	return at.login, true
}

// getApp is GET /app with the app's JWT: the app's id and slug. The slug is its installations' login without
// "[bot]" (AddInstallation's login is "<slug>[bot]", as GitHub names an app's bot user).
func (s *Server) getApp(w http.ResponseWriter, r *http.Request) {
	s.rateHeaders(w)
	app, ok := s.verifyJWT(w, r)
	if !ok {
		return
	}
	slug := fmt.Sprintf("app-%d", app)
	for _, in := range s.installs {
		if in.app == app {
			slug = strings.TrimSuffix(in.login, "[bot]")
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": app, "slug": slug, "name": slug})
}

// mintToken is POST /app/installations/{id}/access_tokens, authenticated with the app's JWT: RS256, signed by the
// app's key, iss the app id, iat not in the future, exp in the future and at most 10 minutes ahead. It answers
// 201 with GitHub's shape: token, expires_at, permissions, repository_selection.
func (s *Server) mintToken(w http.ResponseWriter, r *http.Request, id string) {
	s.rateHeaders(w)
	app, ok := s.verifyJWT(w, r)
	if !ok {
		return
	}
	now := s.now()
	n, _ := strconv.ParseInt(id, 10, 64)
	inst, ok := s.installs[n]
	if !ok || inst.app != app {
		writeJSON(w, http.StatusNotFound, errBody("Not Found"))
		return
	}
	s.minted++
	sum := sha256.Sum256([]byte(fmt.Sprint("token", id, s.minted, now.UnixNano())))
	tok := "ghs_" + hex.EncodeToString(sum[:18])
	exp := now.Add(s.tokenTTL).UTC().Truncate(time.Second)
	s.appTokens[tok] = appToken{login: inst.login, expires: exp}
	writeJSON(w, http.StatusCreated, map[string]any{
		"token": tok, "expires_at": exp.Format(time.RFC3339),
		"permissions":          map[string]any{"pull_requests": "read", "issues": "write", "statuses": "write", "metadata": "read"},
		"repository_selection": "selected",
	})
}

func (s *Server) rateHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(s.remain, 0)))
	h.Set("X-RateLimit-Used", strconv.Itoa(s.limit-max(s.remain, 0)))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(s.reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
}

// answer writes a JSON answer with an ETag; a matching If-None-Match on a GET is a 304 that costs no quota.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, code int, v any) {
	b, _ := json.Marshal(v)
	if r.Method == http.MethodGet && code == http.StatusOK {
		sum := sha256.Sum256(b)
		etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
		w.Header().Set("ETag", etag)
		if inm := r.Header.Get("If-None-Match"); inm != "" && slices.Contains(splitETags(inm), etag) {
			s.rateHeaders(w)
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	s.remain--
	s.counted++
	s.rateHeaders(w)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func splitETags(h string) []string {
	var out []string
	for _, p := range strings.Split(h, ",") {
		out = append(out, strings.TrimSpace(p))
	}
	return out
}

func (s *Server) page(w http.ResponseWriter, r *http.Request, n int) (lo, hi int) {
	q := r.URL.Query()
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per <= 0 {
		per = DefaultPerPage
	}
	per = min(per, MaxPerPage)
	pg, _ := strconv.Atoi(q.Get("page"))
	pg = max(pg, 1)
	last := max((n+per-1)/per, 1)
	link := func(p int, rel string) string {
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
		v := r.URL.Query()
		v.Set("page", strconv.Itoa(p))
		v.Set("per_page", strconv.Itoa(per))
		u.RawQuery = v.Encode()
		return fmt.Sprintf(`<%s>; rel="%s"`, u.String(), rel)
	}
	var links []string
	if pg < last {
		links = append(links, link(pg+1, "next"), link(last, "last"))
	}
	if pg > 1 {
		links = append(links, link(1, "first"), link(pg-1, "prev"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	lo = min((pg-1)*per, n)
	return lo, min(lo+per, n)
}

func (s *Server) listPulls(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	var ps []*pull
	for _, p := range s.pulls {
		if state == "all" || p.state == state {
			ps = append(ps, p)
		}
	}
	desc := q.Get("direction") != "asc"
	slices.SortFunc(ps, func(a, b *pull) int {
		x, y := a.created, b.created
		if q.Get("sort") == "updated" {
			x, y = a.updated, b.updated
		}
		c := x.Compare(y)
		if c == 0 {
			c = a.number - b.number
		}
		if desc {
			c = -c
		}
		return c
	})
	lo, hi := s.page(w, r, len(ps))
	out := []any{}
	for _, p := range ps[lo:hi] {
		out = append(out, s.pullJSON(p))
	}
	s.answer(w, r, http.StatusOK, out)
}

func (s *Server) pullJSON(p *pull) map[string]any {
	full := s.Owner + "/" + s.Repo
	headRepo := any(map[string]any{"full_name": full, "name": s.Repo, "owner": map[string]any{"login": s.Owner}})
	if p.HeadRepo != "" {
		o, n, _ := strings.Cut(p.HeadRepo, "/")
		headRepo = map[string]any{"full_name": p.HeadRepo, "name": n, "owner": map[string]any{"login": o}, "fork": true}
	}
	if p.ForkDeleted {
		headRepo = nil
	}
	labels := []any{}
	for i, l := range p.Labels {
		labels = append(labels, map[string]any{"id": i + 1, "name": l})
	}
	m := map[string]any{
		"number": p.number, "state": p.state, "title": p.Title, "draft": p.Draft, "merged": p.merged,
		"user":       map[string]any{"login": p.Author, "id": idOf(p.Author)},
		"head":       map[string]any{"ref": p.HeadRef, "sha": p.HeadSHA, "label": p.Author + ":" + p.HeadRef, "repo": headRepo},
		"base":       map[string]any{"ref": p.BaseRef, "sha": fakeSHA("base" + p.BaseRef), "repo": map[string]any{"full_name": full}},
		"labels":     labels,
		"created_at": p.created.Format(time.RFC3339), "updated_at": p.updated.Format(time.RFC3339),
	}
	if p.merged {
		m["merged_at"] = p.updated.Format(time.RFC3339)
	}
	return m
}

func (s *Server) permission(w http.ResponseWriter, r *http.Request, user string) {
	perm, ok := s.perms[user]
	if !ok {
		s.answer(w, r, http.StatusNotFound, errBody(user+" is not a user"))
		return
	}
	role := map[string]string{"admin": "admin", "write": "write", "read": "read", "none": "none"}[perm]
	s.answer(w, r, http.StatusOK, map[string]any{
		"permission": perm, "role_name": role, "user": map[string]any{"login": user, "id": idOf(user)},
	})
}

func (s *Server) createStatus(w http.ResponseWriter, r *http.Request, sha, login string) {
	var in struct {
		State       string `json:"state"`
		TargetURL   string `json:"target_url"`
		Description string `json:"description"`
		Context     string `json:"context"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		s.answer(w, r, http.StatusBadRequest, errBody("Problems parsing JSON"))
		return
	}
	switch in.State {
	case "error", "failure", "pending", "success":
	default:
		s.answer(w, r, http.StatusUnprocessableEntity, validation("Status", "state", "invalid",
			"state is not included in the list"))
		return
	}
	if utf8.RuneCountInString(in.Description) > StatusDescription {
		s.answer(w, r, http.StatusUnprocessableEntity, validation("Status", "description", "custom",
			fmt.Sprintf("description is too long (maximum is %d characters)", StatusDescription)))
		return
	}
	if in.Context == "" {
		in.Context = "default"
	}
	n := 0
	for _, st := range s.statuses[sha] {
		if st.Context == in.Context {
			n++
		}
	}
	if n >= StatusesPerContext {
		s.answer(w, r, http.StatusUnprocessableEntity, validation("Status", "", "custom",
			"This SHA and context has reached the maximum number of statuses."))
		return
	}
	s.nextID++
	st := status{ID: s.nextID, State: in.State, Description: in.Description, TargetURL: in.TargetURL,
		Context: in.Context, Creator: login, Created: s.now().UTC().Truncate(time.Second)}
	s.statuses[sha] = append(s.statuses[sha], st)
	s.answer(w, r, http.StatusCreated, statusJSON(st))
}

func statusJSON(st status) map[string]any {
	return map[string]any{
		"id": st.ID, "state": st.State, "description": st.Description, "target_url": st.TargetURL,
		"context": st.Context, "creator": map[string]any{"login": st.Creator},
		"created_at": st.Created.Format(time.RFC3339), "updated_at": st.Created.Format(time.RFC3339),
	}
}

// combined is GET /commits/{ref}/status: the latest status per context, paginated, and the combined state.
func (s *Server) combined(w http.ResponseWriter, r *http.Request, sha string) {
	latest := map[string]status{}
	var order []string
	for _, st := range s.statuses[sha] {
		if _, ok := latest[st.Context]; !ok {
			order = append(order, st.Context)
		}
		latest[st.Context] = st
	}
	slices.Sort(order)
	state := "pending"
	if len(order) > 0 {
		state = "success"
		for _, c := range order {
			switch latest[c].State {
			case "error", "failure":
				state = "failure"
			case "pending":
				if state == "success" {
					state = "pending"
				}
			}
		}
	}
	lo, hi := s.page(w, r, len(order))
	out := []any{}
	for _, c := range order[lo:hi] {
		out = append(out, statusJSON(latest[c]))
	}
	s.answer(w, r, http.StatusOK, map[string]any{"state": state, "sha": sha, "total_count": len(order), "statuses": out})
}

func (s *Server) listComments(w http.ResponseWriter, r *http.Request, n int) {
	var cs []*comment
	for _, c := range s.comments {
		if c.Issue == n {
			cs = append(cs, c)
		}
	}
	lo, hi := s.page(w, r, len(cs))
	out := []any{}
	for _, c := range cs[lo:hi] {
		out = append(out, commentJSON(c))
	}
	s.answer(w, r, http.StatusOK, out)
}

// listEvents answers an issue's events, oldest first, paginated like every list.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, n int) {
	var es []*issueEvent
	for _, e := range s.events {
		if e.Issue == n {
			es = append(es, e)
		}
	}
	lo, hi := s.page(w, r, len(es))
	out := []any{}
	for _, e := range es[lo:hi] {
		m := map[string]any{
			"id": e.ID, "node_id": fmt.Sprintf("IE_%d", e.ID), "event": e.Event,
			"url":       fmt.Sprintf("http://%s/repos/%s/%s/issues/events/%d", r.Host, s.Owner, s.Repo, e.ID),
			"actor":     map[string]any{"login": e.Actor, "id": idOf(e.Actor), "type": "User"},
			"commit_id": nil, "commit_url": nil, "performed_via_github_app": nil,
			"created_at": e.Created.Format(time.RFC3339),
		}
		if e.Label != "" {
			m["label"] = map[string]any{"name": e.Label, "color": "ededed"}
		}
		out = append(out, m)
	}
	s.answer(w, r, http.StatusOK, out)
}

func commentJSON(c *comment) map[string]any {
	return map[string]any{
		"id": c.ID, "body": c.Body, "user": map[string]any{"login": c.User, "id": idOf(c.User)},
		"created_at": c.Created.Format(time.RFC3339), "updated_at": c.Updated.Format(time.RFC3339),
	}
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (string, bool) {
	var in struct {
		Body *string `json:"body"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		s.answer(w, r, http.StatusBadRequest, errBody("Problems parsing JSON"))
		return "", false
	}
	if in.Body == nil || *in.Body == "" {
		s.answer(w, r, http.StatusUnprocessableEntity, validation("IssueComment", "body", "missing_field", ""))
		return "", false
	}
	if utf8.RuneCountInString(*in.Body) > CommentLimit {
		s.answer(w, r, http.StatusUnprocessableEntity, validation("IssueComment", "body", "custom",
			fmt.Sprintf("body is too long (maximum is %d characters)", CommentLimit)))
		return "", false
	}
	return *in.Body, true
}

func (s *Server) createComment(w http.ResponseWriter, r *http.Request, n int, login string) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	s.addComment(n, login, body)
	s.answer(w, r, http.StatusCreated, commentJSON(s.comments[len(s.comments)-1]))
}

func (s *Server) editComment(w http.ResponseWriter, r *http.Request, id int64, login string) {
	var c *comment
	for _, x := range s.comments {
		if x.ID == id {
			c = x
		}
	}
	if c == nil {
		s.answer(w, r, http.StatusNotFound, errBody("Not Found"))
		return
	}
	if c.User != login && s.perms[login] != "admin" && s.perms[login] != "write" {
		s.answer(w, r, http.StatusForbidden, errBody("Resource not accessible by personal access token"))
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	c.Body, c.Updated = body, s.now().UTC().Truncate(time.Second)
	s.answer(w, r, http.StatusOK, commentJSON(c))
}

func idOf(login string) int64 {
	h := sha256.Sum256([]byte(login))
	return int64(h[0])<<16 | int64(h[1])<<8 | int64(h[2])
}

func errBody(msg string) map[string]any {
	return map[string]any{"message": msg, "documentation_url": "https://docs.github.com/rest"}
}

func validation(resource, field, code, msg string) map[string]any {
	e := map[string]any{"resource": resource, "code": code}
	if field != "" {
		e["field"] = field
	}
	if msg != "" {
		e["message"] = msg
	}
	return map[string]any{"message": "Validation Failed", "errors": []any{e},
		"documentation_url": "https://docs.github.com/rest"}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	writeRaw(w, code, "application/json; charset=utf-8", string(b))
}

func writeRaw(w http.ResponseWriter, code int, ctype, body string) {
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// verifyJWT checks an app JWT (RS256, signed by a registered app's key, iss the app id, iat not in the future, exp
// in the future and at most 10 minutes ahead) and returns the app; it answers 401 itself when the JWT fails.
func (s *Server) verifyJWT(w http.ResponseWriter, r *http.Request) (int64, bool) {
	unauthorized := func(msg string) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": msg,
			"documentation_url": "https://docs.github.com/rest"})
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		unauthorized("A JSON web token could not be decoded")
		return 0, false
	}
	now := s.now()
	var claims jwt.RegisteredClaims
	var app int64
	_, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		iss, err := t.Claims.GetIssuer()
		if err != nil {
			return nil, err
		}
		app, err = strconv.ParseInt(iss, 10, 64)
		if err != nil {
			return nil, errors.New("'Issuer' claim ('iss') must be an Integer")
		}
		key := s.apps[app]
		if key == nil {
			return nil, errors.New("Integration not found")
		}
		return key, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithIssuedAt(), jwt.WithExpirationRequired())
	switch {
	case err != nil:
		unauthorized("A JSON web token could not be decoded")
		return 0, false
	case claims.ExpiresAt.Sub(now) > 10*time.Minute:
		unauthorized("'Expiration time' claim ('exp') is too far in the future")
		return 0, false
	case claims.IssuedAt == nil:
		unauthorized("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued")
		return 0, false
	}
	return app, true
}
