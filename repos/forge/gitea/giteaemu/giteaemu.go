package giteaemu

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Defaults of a new Server.
const (
	// DefaultCommentLimit is the longest comment body the emulator accepts, in characters (see doc.go: Gitea's
	// docs name none; this is berth's conservative budget).
	DefaultCommentLimit = 65535
	// DefaultRateLimit is the quota per window the emulator advertises.
	DefaultRateLimit = 5000
	// Version is what GET /api/v1/version answers.
	Version = "1.22.3"
)

// Fault is an injected failure, served to the next matching requests.
type Fault int

// Faults.
const (
	FaultNone      Fault = iota
	Fault5xx             // 500 with Gitea's JSON error shape
	FaultHTML200         // an HTML page with status 200 (a proxy's login or maintenance page)
	FaultHTML502         // an HTML page with status 502 (a proxy with the backend down)
	FaultTruncated       // a 200 whose JSON body ends mid-document
	FaultTimeout         // the answer never comes until the request's context ends
	FaultExpired         // 401: the token expired
	FaultRateLimit       // 429 with Retry-After
	FaultSecondary       // 403 secondary limit with Retry-After
)

// User is a Gitea user.
type User struct {
	ID    int64  `json:"id"`
	Login string `json:"login"`
}

type repoJSON struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	FullName string `json:"full_name"`
	Owner    User   `json:"owner"`
}

type branchJSON struct {
	Label string    `json:"label"`
	Ref   string    `json:"ref"`
	Sha   string    `json:"sha"`
	Repo  *repoJSON `json:"repo"`
}

type labelJSON struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Color string `json:"color"`
}

// PR is one pull request, as the emulator keeps it.
type PR struct {
	Number   int64
	Title    string
	Author   string
	State    string // "open" or "closed"
	Merged   bool
	Draft    bool
	HeadRef  string
	HeadSHA  string
	HeadRepo string // "owner/name"; the base repository when empty
	BaseRef  string
	Labels   []string
	Updated  time.Time
}

type prJSON struct {
	ID        int64       `json:"id"`
	Number    int64       `json:"number"`
	User      User        `json:"user"`
	Title     string      `json:"title"`
	Labels    []labelJSON `json:"labels"`
	State     string      `json:"state"`
	Draft     bool        `json:"draft"`
	Merged    bool        `json:"merged"`
	Base      branchJSON  `json:"base"`
	Head      branchJSON  `json:"head"`
	Created   time.Time   `json:"created_at"`
	Updated   time.Time   `json:"updated_at"`
	Closed    *time.Time  `json:"closed_at"`
	MergedAt  *time.Time  `json:"merged_at"`
	Assignees []User      `json:"assignees"`
}

// StatusRecord is one commit status as stored.
type StatusRecord struct {
	ID          int64     `json:"id"`
	State       string    `json:"status"`
	TargetURL   string    `json:"target_url"`
	Description string    `json:"description"`
	Context     string    `json:"context"`
	Creator     User      `json:"creator"`
	Created     time.Time `json:"created_at"`
	Updated     time.Time `json:"updated_at"`
}

// CommentRecord is one issue comment as stored.
type CommentRecord struct {
	ID      int64     `json:"id"`
	User    User      `json:"user"`
	Body    string    `json:"body"`
	Created time.Time `json:"created_at"`
	Updated time.Time `json:"updated_at"`
	Issue   int64     `json:"-"`
	seq     int64     // the order of the timeline
}

// labelRecord is one label entry of an issue's timeline (a comment of type "label" in Gitea).
type labelRecord struct {
	ID      int64
	Issue   int64
	User    string
	Label   string
	Added   bool
	Created time.Time
	seq     int64
}

// Server is a stateful Gitea API emulator for one repository.
type Server struct {
	*httptest.Server
	Owner, Repo string

	mu           sync.Mutex
	tokens       map[string]string // token -> login
	expired      map[string]bool
	perms        map[string]string
	users        map[string]bool
	prs          map[int64]*PR
	statuses     map[string][]StatusRecord
	comments     []CommentRecord
	labelEvents  []labelRecord
	nextID       int64
	nextEvent    int64 // label entries' ids: from 1,000,000, so that they move no pull request's or comment's number
	seq          int64 // the order of timeline entries stamped at the same time
	version      int64 // bumped on every change of the open listing
	faults       []faultRule
	requests     map[string]int
	total        int
	remaining    int
	limit        int
	commentLimit int
	etags        bool
	timelineTags bool
	strip        bool
	now          func() time.Time
}

// Now is the emulator's clock (fixed: 2026-01-02T03:04:05Z), for X-RateLimit-Reset.
func (s *Server) Now() time.Time { return s.now() }

type faultRule struct {
	match string // a substring of "METHOD path"; "" matches all
	query string // a substring of the raw query; "" matches all
	fault Fault
	n     int
}

// New starts an emulator for owner/repo with user "berth-bot" holding token and admin permission.
func New(owner, repo, botLogin, token string) *Server {
	s := &Server{
		Owner: owner, Repo: repo,
		tokens:       map[string]string{token: botLogin},
		expired:      map[string]bool{},
		perms:        map[string]string{botLogin: "admin", owner: "owner"},
		users:        map[string]bool{botLogin: true, owner: true},
		prs:          map[int64]*PR{},
		statuses:     map[string][]StatusRecord{},
		requests:     map[string]int{},
		limit:        DefaultRateLimit,
		remaining:    DefaultRateLimit,
		commentLimit: DefaultCommentLimit,
		etags:        true,
		nextID:       1,
		nextEvent:    1_000_000,
		now:          func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// --- admin side ---

// AddToken lets token act as login.
func (s *Server) AddToken(token, login string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = login
}

// ExpireToken makes token answer 401 from now on.
func (s *Server) ExpireToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expired[token] = true
}

// SetETags turns ETag/304 answers on the pulls listing on or off (off is what Gitea itself does; doc.go).
func (s *Server) SetETags(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.etags = on
}

// SetQuota sets the rate-limit quota left; at 0 every counted request is refused with 403 and
// X-RateLimit-Remaining: 0 (a rate limiter in front of Gitea; doc.go).
func (s *Server) SetQuota(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remaining = n
}

// StripPaging drops the Link and X-Total-Count headers from answers (a proxy that strips them).
func (s *Server) StripPaging(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.strip = on
}

// SetCommentLimit sets the longest accepted comment body, in characters.
func (s *Server) SetCommentLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commentLimit = n
}

// Open opens a pull request and returns its number.
func (s *Server) Open(p PR) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.Number = s.nextID
	s.nextID++
	p.State = "open"
	if p.BaseRef == "" {
		p.BaseRef = "main"
	}
	p.Updated = s.now()
	s.users[p.Author] = true
	s.prs[p.Number] = &p
	s.version++
	return p.Number
}

func (s *Server) edit(n int64, f func(*PR)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.prs[n]
	if !ok {
		panic(fmt.Sprintf("giteaemu: no pull request %d", n))
	}
	f(p)
	p.Updated = s.now()
	s.version++
}

// ClosePull closes a pull request.
func (s *Server) ClosePull(n int64) { s.edit(n, func(p *PR) { p.State = "closed" }) }

// MergePull merges (and closes) a pull request.
func (s *Server) MergePull(n int64) { s.edit(n, func(p *PR) { p.State, p.Merged = "closed", true }) }

// Push gives a pull request a new head SHA.
func (s *Server) Push(n int64, sha string) { s.edit(n, func(p *PR) { p.HeadSHA = sha }) }

// DefaultLabeler is the user Label and Unlabel act as. It has no permission unless the test gives it one
// (Collaborator).
const DefaultLabeler = "labeler"

// Label adds a label to a pull request as DefaultLabeler.
func (s *Server) Label(n int64, label string) { s.LabelAs(n, label, DefaultLabeler) }

// Unlabel removes a label from a pull request as DefaultLabeler.
func (s *Server) Unlabel(n int64, label string) { s.UnlabelAs(n, label, DefaultLabeler) }

// LabelAs adds a label as user, with a "label" timeline entry (body "1"); a label the pull request already has
// changes nothing, as in Gitea.
func (s *Server) LabelAs(n int64, label, user string) { s.relabel(n, label, user, true) }

// UnlabelAs removes a label as user, with a "label" timeline entry (body ""); a label the pull request does not
// have changes nothing.
func (s *Server) UnlabelAs(n int64, label, user string) { s.relabel(n, label, user, false) }

func (s *Server) relabel(n int64, label, user string, add bool) {
	s.edit(n, func(p *PR) {
		i := slices.Index(p.Labels, label)
		if (i >= 0) == add {
			return
		}
		if add {
			p.Labels = append(p.Labels, label)
		} else {
			p.Labels = slices.Delete(p.Labels, i, i+1)
		}
		s.users[user] = true
		s.seq++
		s.labelEvents = append(s.labelEvents, labelRecord{ID: s.nextEvent, Issue: n, User: user, Label: label,
			Added: add, Created: s.now(), seq: s.seq})
		s.nextEvent++
	})
}

// SetNow replaces the emulator's clock (fixed at 2026-01-02T03:04:05Z): it stamps comments, label entries and
// pull requests from then on.
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetTimelineETags makes the timeline answer with an ETag, and a 304 to a matching If-None-Match, as a caching
// proxy in front of Gitea would (off by default: Gitea itself sends none).
func (s *Server) SetTimelineETags(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timelineTags = on
}

// Collaborator gives user a permission ("read", "write", "admin", "owner").
func (s *Server) Collaborator(user, perm string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perms[user] = perm
	s.users[user] = true
}

// AddUser makes user exist (with no permission on the repository).
func (s *Server) AddUser(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[user] = true
}

// Comment adds a comment on issue/PR n as user and returns its id.
func (s *Server) Comment(n int64, user, body string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addComment(n, user, body)
}

func (s *Server) addComment(n int64, user, body string) int64 {
	s.users[user] = true
	id := s.nextID
	s.nextID++
	s.seq++
	s.comments = append(s.comments, CommentRecord{ID: id, User: User{ID: userID(user), Login: user}, Body: body,
		Created: s.now(), Updated: s.now(), Issue: n, seq: s.seq})
	return id
}

// Comments returns the comments of n, oldest first.
func (s *Server) Comments(n int64) []CommentRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []CommentRecord
	for _, c := range s.comments {
		if c.Issue == n {
			out = append(out, c)
		}
	}
	return out
}

// Statuses returns every status stored for sha, oldest first.
func (s *Server) Statuses(sha string) []StatusRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]StatusRecord(nil), s.statuses[sha]...)
}

// Fail serves fault to the next n requests whose "METHOD path" contains match ("" for any).
func (s *Server) Fail(match string, fault Fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faultRule{match: match, fault: fault, n: n})
}

// FailQuery is Fail for requests whose raw query also contains query (e.g. "page=2").
func (s *Server) FailQuery(match, query string, fault Fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faultRule{match: match, query: query, fault: fault, n: n})
}

// Requests is how many API requests the emulator answered for key ("GET /pulls", "POST /statuses", ...), or in
// all with key "".
func (s *Server) Requests(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if key == "" {
		return s.total
	}
	return s.requests[key]
}

// Remaining is the rate-limit quota left.
func (s *Server) Remaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remaining
}

func userID(login string) int64 {
	h := sha256.Sum256([]byte(login))
	return int64(h[0])<<8 | int64(h[1]) + 1
}

// --- wire side ---

type apiError struct {
	Message string `json:"message"`
	URL     string `json:"url"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Message: msg, URL: "https://gitea.example/api/swagger"})
}

const htmlPage = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"

func (s *Server) takeFault(key, query string) Fault {
	for i := range s.faults {
		r := &s.faults[i]
		if r.n > 0 && strings.Contains(key, r.match) && strings.Contains(query, r.query) {
			r.n--
			return r.fault
		}
	}
	return FaultNone
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.EscapedPath(), "/api/v1")
	if path == r.URL.EscapedPath() {
		writeErr(w, http.StatusNotFound, "Not Found")
		return
	}
	if path == "/version" {
		writeJSON(w, 200, map[string]string{"version": Version})
		return
	}
	s.mu.Lock()
	op := opKey(r.Method, path)
	s.total++
	s.requests[op]++
	fault := s.takeFault(r.Method+" "+path, r.URL.RawQuery)
	s.mu.Unlock()

	switch fault {
	case FaultTimeout:
		<-r.Context().Done()
		return
	case Fault5xx:
		writeErr(w, http.StatusInternalServerError, "internal server error")
		return
	case FaultHTML200, FaultHTML502:
		w.Header().Set("Content-Type", "text/html")
		if fault == FaultHTML502 {
			w.WriteHeader(http.StatusBadGateway)
		}
		_, _ = w.Write([]byte(htmlPage))
		return
	case FaultExpired:
		writeErr(w, http.StatusUnauthorized, "user does not exist [uid: 0, name: ]")
		return
	case FaultRateLimit, FaultSecondary:
		w.Header().Set("Retry-After", "30")
		code := http.StatusTooManyRequests
		if fault == FaultSecondary {
			code = http.StatusForbidden
		}
		writeErr(w, code, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.")
		return
	}

	token := strings.TrimPrefix(r.Header.Get("Authorization"), "token ")
	s.mu.Lock()
	login, ok := s.tokens[token]
	expired := s.expired[token]
	s.mu.Unlock()
	if !ok || expired {
		writeErr(w, http.StatusUnauthorized, "user does not exist [uid: 0, name: ]")
		return
	}

	s.mu.Lock()
	spent := s.remaining <= 0
	s.mu.Unlock()
	if spent {
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(s.limit))
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(s.now().Add(time.Hour).Unix(), 10))
		writeErr(w, http.StatusForbidden, "API rate limit exceeded")
		return
	}

	var buf bodyBuffer
	code := s.route(&buf, r, path, login)
	s.mu.Lock()
	if s.strip {
		delete(buf.header, "Link")
		delete(buf.header, "X-Total-Count")
	}
	if code != http.StatusNotModified && s.remaining > 0 {
		s.remaining--
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(s.remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(s.now().Add(time.Hour).Unix(), 10))
	s.mu.Unlock()
	for k, v := range buf.header {
		h[k] = v
	}
	if buf.ctype != "" {
		h.Set("Content-Type", buf.ctype)
	}
	w.WriteHeader(code)
	body := buf.body
	if fault == FaultTruncated && len(body) > 2 {
		body = body[:len(body)/2]
	}
	_, _ = w.Write(body)
}

type bodyBuffer struct {
	header http.Header
	ctype  string
	body   []byte
}

func (b *bodyBuffer) json(v any) {
	b.ctype = "application/json;charset=utf-8"
	b.body, _ = json.Marshal(v)
}

func (b *bodyBuffer) err(msg string) {
	b.json(apiError{Message: msg, URL: "https://gitea.example/api/swagger"})
}

func (b *bodyBuffer) set(k, v string) {
	if b.header == nil {
		b.header = http.Header{}
	}
	b.header.Set(k, v)
}

func opKey(method, path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 4 && parts[0] == "repos":
		rest := parts[3:]
		switch rest[0] {
		case "pulls":
			if len(rest) == 1 {
				return method + " /pulls"
			}
			return method + " /pulls/{n}"
		case "collaborators":
			return method + " /permission"
		case "statuses":
			return method + " /statuses"
		case "commits":
			if rest[len(rest)-1] == "status" {
				return method + " /status"
			}
			return method + " /commits/statuses"
		case "issues":
			if len(rest) == 3 && rest[2] == "timeline" {
				return method + " /timeline"
			}
			if len(rest) > 1 && rest[1] == "comments" {
				return method + " /comments/{id}"
			}
			return method + " /comments"
		}
	case len(parts) == 1 && parts[0] == "user":
		return method + " /user"
	}
	return method + " " + path
}

func (s *Server) route(b *bodyBuffer, r *http.Request, path, login string) int {
	if path == "/user" && r.Method == http.MethodGet {
		b.json(User{ID: userID(login), Login: login})
		return 200
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := range parts {
		p, err := url.PathUnescape(parts[i])
		if err != nil {
			b.err("bad path")
			return 400
		}
		parts[i] = p
	}
	if len(parts) < 4 || parts[0] != "repos" || parts[1] != s.Owner || parts[2] != s.Repo {
		b.err("The target couldn't be found.")
		return 404
	}
	rest := parts[3:]
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.Method == "GET" && len(rest) == 1 && rest[0] == "pulls":
		return s.listPulls(b, r)
	case r.Method == "GET" && len(rest) == 2 && rest[0] == "pulls":
		n, err := strconv.ParseInt(rest[1], 10, 64)
		p, ok := s.prs[n]
		if err != nil || !ok {
			b.err("The target couldn't be found.")
			return 404
		}
		b.json(s.prJSON(p))
		return 200
	case r.Method == "GET" && len(rest) == 3 && rest[0] == "collaborators" && rest[2] == "permission":
		if me := s.perms[login]; rest[1] != login && me != "admin" && me != "owner" {
			// Gitea: only repository admins may read another user's permission.
			b.err("Only admins can query all permissions, repo admins can query all repo permissions, collaborators can query only their own")
			return 403
		}
		perm, ok := s.perms[rest[1]]
		if !ok {
			if !s.users[rest[1]] {
				b.err("user redirect does not exist [name: " + rest[1] + "]")
				return 404
			}
			perm = "none"
		}
		role := map[string]string{"owner": "owner", "admin": "admin", "write": "write", "read": "read"}[perm]
		b.json(map[string]any{"permission": perm, "role_name": role, "user": User{ID: userID(rest[1]), Login: rest[1]}})
		return 200
	case r.Method == "POST" && len(rest) == 2 && rest[0] == "statuses":
		return s.createStatus(b, r, rest[1], login)
	case r.Method == "GET" && len(rest) == 3 && rest[0] == "commits" && rest[2] == "statuses":
		all := append([]StatusRecord(nil), s.statuses[rest[1]]...)
		sort.Slice(all, func(i, j int) bool { return all[i].ID > all[j].ID })
		return paginate(b, r, all)
	case r.Method == "GET" && len(rest) == 3 && rest[0] == "commits" && rest[2] == "status":
		return s.combined(b, rest[1])
	case r.Method == "GET" && len(rest) == 3 && rest[0] == "issues" && rest[2] == "comments":
		n, err := strconv.ParseInt(rest[1], 10, 64)
		if _, ok := s.prs[n]; err != nil || !ok {
			b.err("The target couldn't be found.")
			return 404
		}
		var out []CommentRecord
		for _, c := range s.comments {
			if c.Issue == n {
				out = append(out, c)
			}
		}
		// Gitea's issue-comment listing is not paginated (it takes since/before only) and answers everything.
		if out == nil {
			out = []CommentRecord{}
		}
		b.set("X-Total-Count", strconv.Itoa(len(out)))
		b.json(out)
		return 200
	case r.Method == "GET" && len(rest) == 3 && rest[0] == "issues" && rest[2] == "timeline":
		n, err := strconv.ParseInt(rest[1], 10, 64)
		if _, ok := s.prs[n]; err != nil || !ok {
			b.err("The target couldn't be found.")
			return 404
		}
		return s.timeline(b, r, n)
	case r.Method == "POST" && len(rest) == 3 && rest[0] == "issues" && rest[2] == "comments":
		n, err := strconv.ParseInt(rest[1], 10, 64)
		if _, ok := s.prs[n]; err != nil || !ok {
			b.err("The target couldn't be found.")
			return 404
		}
		var in struct {
			Body string `json:"body"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			b.err("invalid JSON")
			return 422
		}
		if code := s.checkBody(b, in.Body); code != 0 {
			return code
		}
		s.addComment(n, login, in.Body)
		b.json(s.comments[len(s.comments)-1])
		return 201
	case r.Method == "PATCH" && len(rest) == 3 && rest[0] == "issues" && rest[1] == "comments":
		id, _ := strconv.ParseInt(rest[2], 10, 64)
		for i := range s.comments {
			c := &s.comments[i]
			if c.ID != id {
				continue
			}
			if c.User.Login != login && s.perms[login] != "admin" && s.perms[login] != "owner" {
				b.err("user should be the poster or an admin")
				return 403
			}
			var in struct {
				Body string `json:"body"`
			}
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				b.err("invalid JSON")
				return 422
			}
			if code := s.checkBody(b, in.Body); code != 0 {
				return code
			}
			c.Body, c.Updated = in.Body, s.now()
			b.json(*c)
			return 200
		}
		b.err("The target couldn't be found.")
		return 404
	}
	b.err("The target couldn't be found.")
	return 404
}

func (s *Server) checkBody(b *bodyBuffer, body string) int {
	if n := utf8.RuneCountInString(body); n > s.commentLimit {
		b.err(fmt.Sprintf("[Body]: body is too long (%d characters, at most %d)", n, s.commentLimit))
		return 422
	}
	return 0
}

var validStates = map[string]bool{"pending": true, "success": true, "error": true, "failure": true, "warning": true}

func (s *Server) createStatus(b *bodyBuffer, r *http.Request, sha, login string) int {
	var in struct {
		State       string `json:"state"`
		TargetURL   string `json:"target_url"`
		Description string `json:"description"`
		Context     string `json:"context"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		b.err("invalid JSON")
		return 422
	}
	if !validStates[in.State] {
		b.err("[State]: invalid commit status state")
		return 422
	}
	if s.perms[login] != "write" && s.perms[login] != "admin" && s.perms[login] != "owner" {
		b.err("user should have write permission")
		return 403
	}
	rec := StatusRecord{ID: s.nextID, State: in.State, TargetURL: in.TargetURL, Description: in.Description,
		Context: in.Context, Creator: User{ID: userID(login), Login: login}, Created: s.now(), Updated: s.now()}
	s.nextID++
	s.statuses[sha] = append(s.statuses[sha], rec)
	b.json(rec)
	return 201
}

func (s *Server) combined(b *bodyBuffer, sha string) int {
	latest := map[string]StatusRecord{}
	for _, st := range s.statuses[sha] {
		latest[st.Context] = st
	}
	out := []StatusRecord{}
	for _, st := range latest {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	state := ""
	if len(out) > 0 {
		state = "success"
		for _, st := range out {
			switch st.State {
			case "error", "failure":
				state = st.State
			case "pending":
				if state == "success" {
					state = "pending"
				}
			}
		}
	}
	b.json(map[string]any{"state": state, "sha": sha, "total_count": len(out), "statuses": out})
	return 200
}

func (s *Server) prJSON(p *PR) prJSON {
	base := &repoJSON{ID: 1, Name: s.Repo, FullName: s.Owner + "/" + s.Repo, Owner: User{ID: userID(s.Owner), Login: s.Owner}}
	head := base
	if p.HeadRepo != "" && p.HeadRepo != base.FullName {
		o, n, _ := strings.Cut(p.HeadRepo, "/")
		head = &repoJSON{ID: 2 + userID(p.HeadRepo), Name: n, FullName: p.HeadRepo, Owner: User{ID: userID(o), Login: o}}
	}
	out := prJSON{ID: 1000 + p.Number, Number: p.Number, User: User{ID: userID(p.Author), Login: p.Author},
		Title: p.Title, Labels: []labelJSON{}, State: p.State, Draft: p.Draft, Merged: p.Merged,
		Base:    branchJSON{Label: p.BaseRef, Ref: p.BaseRef, Sha: "b" + strings.Repeat("0", 39), Repo: base},
		Head:    branchJSON{Label: p.HeadRef, Ref: p.HeadRef, Sha: p.HeadSHA, Repo: head},
		Created: p.Updated, Updated: p.Updated, Assignees: []User{}}
	for i, l := range p.Labels {
		out.Labels = append(out.Labels, labelJSON{ID: int64(i + 1), Name: l, Color: "ededed"})
	}
	if p.State == "closed" {
		t := p.Updated
		out.Closed = &t
		if p.Merged {
			out.MergedAt = &t
		}
	}
	return out
}

func (s *Server) listPulls(b *bodyBuffer, r *http.Request) int {
	state := r.URL.Query().Get("state")
	if state == "" {
		state = "open"
	}
	var all []prJSON
	nums := make([]int64, 0, len(s.prs))
	for n := range s.prs {
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] > nums[j] })
	for _, n := range nums {
		p := s.prs[n]
		if state == "all" || p.State == state {
			all = append(all, s.prJSON(p))
		}
	}
	page, limit := pageParams(r)
	if s.etags {
		sum := sha256.Sum256([]byte(fmt.Sprintf("%d|%s|%d|%d", s.version, state, page, limit)))
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		b.set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			return http.StatusNotModified
		}
	}
	return paginate(b, r, all)
}

// MaxLimit is Gitea's default [api] MAX_RESPONSE_ITEMS; DefaultPagingNum its DEFAULT_PAGING_NUM.
const (
	MaxLimit         = 50
	DefaultPagingNum = 30
)

func pageParams(r *http.Request) (page, limit int) {
	page, _ = strconv.Atoi(r.URL.Query().Get("page"))
	limit, _ = strconv.Atoi(r.URL.Query().Get("limit"))
	if page < 1 {
		page = 1
	}
	if limit <= 0 {
		limit = DefaultPagingNum
	}
	if limit > MaxLimit {
		limit = MaxLimit
	}
	return page, limit
}

func paginate[T any](b *bodyBuffer, r *http.Request, all []T) int {
	page, limit := pageParams(r)
	total := len(all)
	lo := min((page-1)*limit, total)
	hi := min(lo+limit, total)
	items := all[lo:hi]
	if items == nil {
		items = []T{}
	}
	last := (total + limit - 1) / limit
	var links []string
	link := func(p int, rel string) {
		u := *r.URL
		q := u.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("limit", strconv.Itoa(limit))
		u.RawQuery = q.Encode()
		links = append(links, fmt.Sprintf(`<http://%s%s>; rel="%s"`, r.Host, u.RequestURI(), rel))
	}
	if page < last {
		link(page+1, "next")
		link(last, "last")
	}
	if page > 1 {
		link(1, "first")
		link(page-1, "prev")
	}
	if len(links) > 0 {
		b.set("Link", strings.Join(links, ","))
	}
	b.set("X-Total-Count", strconv.Itoa(total))
	b.json(items)
	return 200
}

// timeline answers an issue's timeline as Gitea does: every entry (here comments and label changes) oldest first
// (by time, then creation); paginated (page 1 when absent, limit DefaultPagingNum, at most MaxLimit: Gitea 1.27's
// utils.GetListOptions), with X-Total-Count counting the entries of this answer and no Link header; a page past
// the end is "null", not "[]" (Gitea encodes a nil slice).
func (s *Server) timeline(b *bodyBuffer, r *http.Request, n int64) int {
	type entry struct {
		at   time.Time
		seq  int64
		json map[string]any
	}
	var all []entry
	issueURL := fmt.Sprintf("http://%s/%s/%s/issues/%d", r.Host, s.Owner, s.Repo, n)
	for _, c := range s.comments {
		if c.Issue == n {
			all = append(all, entry{c.Created, c.seq, map[string]any{"id": c.ID, "type": "comment", "body": c.Body,
				"user": c.User, "created_at": c.Created, "updated_at": c.Updated, "issue_url": issueURL,
				"html_url": fmt.Sprintf("%s#issuecomment-%d", issueURL, c.ID), "label": nil}})
		}
	}
	for _, e := range s.labelEvents {
		if e.Issue != n {
			continue
		}
		body := ""
		if e.Added {
			body = "1"
		}
		all = append(all, entry{e.Created, e.seq, map[string]any{"id": e.ID, "type": "label", "body": body,
			"user": User{ID: userID(e.User), Login: e.User}, "created_at": e.Created, "updated_at": e.Created,
			"issue_url": issueURL, "html_url": fmt.Sprintf("%s#issuecomment-%d", issueURL, e.ID),
			"label": labelJSON{ID: userID(e.Label), Name: e.Label, Color: "ededed"}}})
	}
	sort.SliceStable(all, func(i, j int) bool {
		if !all[i].at.Equal(all[j].at) {
			return all[i].at.Before(all[j].at)
		}
		return all[i].seq < all[j].seq
	})
	var items []map[string]any // nil past the end: Gitea answers "null" there
	page, limit := pageParams(r)
	lo := min((page-1)*limit, len(all))
	for _, e := range all[lo:min(lo+limit, len(all))] {
		items = append(items, e.json)
	}
	b.set("X-Total-Count", strconv.Itoa(len(items)))
	b.json(items)
	if s.timelineTags {
		sum := sha256.Sum256(b.body)
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		b.set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			b.body = nil
			return http.StatusNotModified
		}
	}
	return 200
}
