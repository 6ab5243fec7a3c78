package gitlabemu

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
)

// NoteLimit is GitLab's longest note body, in characters.
const NoteLimit = 1_000_000

// Fault is an injected failure: the next Count requests whose path contains Path (all when empty) get it.
type Fault struct {
	Path  string
	Count int
	// After lets that many matching requests through first (to fail page 2, say).
	After int
	// Status and Body answer instead of the real handler (ContentType defaults to application/json).
	Status      int
	Body        string
	ContentType string
	// Header is added to the fault's answer (Retry-After, say).
	Header http.Header
	// Truncate serves the real answer cut in half (a page that ends mid-JSON), with status 200.
	Truncate bool
	// Hang blocks until the client gives up (its context or timeout) or the server closes.
	Hang bool
}

// User is a GitLab user.
type User struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
	State    string `json:"state"`
}

// MR is a merge request as stored.
type MR struct {
	IID             int64
	Title           string
	Author          string
	State           string // opened, closed, merged
	Draft           bool
	SHA             string
	SourceBranch    string
	TargetBranch    string
	SourceProjectID int64
	Labels          []string
	UpdatedAt       time.Time
	created         time.Time
}

type note struct {
	ID        int64     `json:"id"`
	Body      string    `json:"body"`
	Author    User      `json:"author"`
	System    bool      `json:"system"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// labelEvent is one resource label event of a merge request, as GitLab answers it.
type labelEvent struct {
	ID           int64          `json:"id"`
	User         User           `json:"user"`
	CreatedAt    time.Time      `json:"created_at"`
	ResourceType string         `json:"resource_type"`
	ResourceID   int64          `json:"resource_id"`
	Label        map[string]any `json:"label"`
	Action       string         `json:"action"`
}

type status struct {
	ID          int64     `json:"id"`
	SHA         string    `json:"sha"`
	Ref         string    `json:"ref"`
	Status      string    `json:"status"`
	Name        string    `json:"name"`
	TargetURL   string    `json:"target_url"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	Author      User      `json:"author"`
}

// Server is the emulator. Create it with New; Close it when done.
type Server struct {
	*httptest.Server

	mu        sync.Mutex
	projectID int64
	path      string
	projects  map[int64]string
	users     map[string]*User
	tokens    map[string]string // token → username
	expired   map[string]bool
	members   map[int64]int // user id → access level
	mrs       map[int64]*MR
	notes     map[int64][]*note
	events    map[int64][]*labelEvent
	statuses  map[string][]*status
	nextID    int64
	faults    []*Fault
	requests  int
	byPath    map[string]int
	now       time.Time
	quota     int
	remaining int
	reset     time.Time
	done      chan struct{}
}

// New starts an emulator for the project with id and path ("group/name"), with a token for user (who becomes
// the project's maintainer).
func New(projectID int64, path, user, token string) *Server {
	s := &Server{
		projectID: projectID, path: path,
		projects: map[int64]string{projectID: path},
		users:    map[string]*User{}, tokens: map[string]string{}, expired: map[string]bool{},
		members: map[int64]int{}, mrs: map[int64]*MR{}, notes: map[int64][]*note{}, events: map[int64][]*labelEvent{},
		statuses: map[string][]*status{}, nextID: 100, byPath: map[string]int{},
		now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), quota: 2000, remaining: 2000,
		done: make(chan struct{}),
	}
	s.reset = s.now.Add(time.Minute)
	u := s.addUser(user)
	s.tokens[token] = user
	s.members[u.ID] = 40
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close stops the server, releasing hung requests.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.mu.Unlock()
	s.Server.Close()
}

// URL of the API root (give it to the client as its base URL).
func (s *Server) APIURL() string { return s.Server.URL + "/api/v4" }

func (s *Server) id() int64 { s.nextID++; return s.nextID }

func (s *Server) tick() time.Time { s.now = s.now.Add(time.Second); return s.now }

// AddUser creates a user (no access to the project).
func (s *Server) AddUser(name string) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addUser(name)
}

func (s *Server) addUser(name string) User {
	if u, ok := s.users[name]; ok {
		return *u
	}
	u := &User{ID: s.id(), Username: name, Name: name, State: "active"}
	s.users[name] = u
	return *u
}

// AddMember gives user (created when new) an access level on the project (10..50).
func (s *Server) AddMember(user string, level int) {
	u := s.AddUser(user)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.members[u.ID] = level
}

// AddToken adds a token for user.
func (s *Server) AddToken(user, token string) {
	s.AddUser(user)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = user
}

// ExpireToken makes token answer 401 from now on.
func (s *Server) ExpireToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expired[token] = true
}

// AddProject registers another project (a fork) and returns its id.
func (s *Server) AddProject(path string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.id()
	s.projects[id] = path
	return id
}

// Open opens a merge request; a zero SourceProjectID means the project itself. It returns the iid.
func (s *Server) Open(m MR) int64 {
	s.AddUser(m.Author)
	s.mu.Lock()
	defer s.mu.Unlock()
	m.IID = int64(len(s.mrs) + 1)
	m.State = "opened"
	if m.SourceProjectID == 0 {
		m.SourceProjectID = s.projectID
	}
	m.created = s.tick()
	m.UpdatedAt = m.created
	s.mrs[m.IID] = &m
	return m.IID
}

func (s *Server) edit(iid int64, f func(*MR)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mrs[iid]
	f(m)
	m.UpdatedAt = s.tick()
}

// CloseMR closes a merge request.
func (s *Server) CloseMR(iid int64) { s.edit(iid, func(m *MR) { m.State = "closed" }) }

// Reopen reopens a merge request.
func (s *Server) Reopen(iid int64) { s.edit(iid, func(m *MR) { m.State = "opened" }) }

// Merge merges a merge request.
func (s *Server) Merge(iid int64) { s.edit(iid, func(m *MR) { m.State = "merged" }) }

// Push sets a new head SHA.
func (s *Server) Push(iid int64, sha string) { s.edit(iid, func(m *MR) { m.SHA = sha }) }

// DefaultLabeler is the user Label and Unlabel act as. It has no access to the project unless the test gives it
// some (AddMember).
const DefaultLabeler = "labeler"

// Label adds a label as DefaultLabeler.
func (s *Server) Label(iid int64, label string) { s.LabelAs(iid, label, DefaultLabeler) }

// Unlabel removes a label as DefaultLabeler.
func (s *Server) Unlabel(iid int64, label string) { s.UnlabelAs(iid, label, DefaultLabeler) }

// LabelAs adds a label as user (created when new), recording an "add" resource label event; a label the merge
// request already has changes nothing, as on GitLab.
func (s *Server) LabelAs(iid int64, label, user string) { s.relabel(iid, label, user, true) }

// UnlabelAs removes a label as user, recording a "remove" resource label event; a label the merge request does
// not have changes nothing.
func (s *Server) UnlabelAs(iid int64, label, user string) { s.relabel(iid, label, user, false) }

// DeleteLabel deletes a project label: its events stay, with "label": null, as GitLab answers them.
func (s *Server) DeleteLabel(label string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, evs := range s.events {
		for _, e := range evs {
			if e.Label != nil && e.Label["name"] == label {
				e.Label = nil
			}
		}
	}
}

func (s *Server) relabel(iid int64, label, user string, add bool) {
	u := s.AddUser(user)
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mrs[iid]
	i := slices.Index(m.Labels, label)
	if (i >= 0) == add {
		return
	}
	action := "add"
	if add {
		m.Labels = append(m.Labels, label)
	} else {
		m.Labels = slices.Delete(m.Labels, i, i+1)
		action = "remove"
	}
	m.UpdatedAt = s.tick()
	sum := sha256.Sum256([]byte(label))
	s.events[iid] = append(s.events[iid], &labelEvent{ID: s.id(), User: u, CreatedAt: m.UpdatedAt,
		ResourceType: "MergeRequest", ResourceID: iid + 1000, Action: action,
		Label: map[string]any{"id": int64(sum[0])<<8 | int64(sum[1]) + 1, "name": label, "color": "#34495E",
			"text_color": "#FFFFFF", "description": nil}})
}

// Comment adds a note as user; system marks a system note ("added 1 commit").
func (s *Server) Comment(iid int64, user, body string, system bool) int64 {
	u := s.AddUser(user)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tick()
	n := &note{ID: s.id(), Body: body, Author: u, System: system, CreatedAt: t, UpdatedAt: t}
	s.notes[iid] = append(s.notes[iid], n)
	return n.ID
}

// Notes are the notes' body and author, for assertions.
func (s *Server) Notes(iid int64) []struct {
	ID           int64
	Author, Body string
} {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []struct {
		ID           int64
		Author, Body string
	}
	for _, n := range s.notes[iid] {
		out = append(out, struct {
			ID           int64
			Author, Body string
		}{n.ID, n.Author.Username, n.Body})
	}
	return out
}

// StatusCount is how many status records sha has (a pending record moved on counts once).
func (s *Server) StatusCount(sha string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.statuses[sha])
}

// Inject adds a fault.
func (s *Server) Inject(f Fault) {
	if f.Count == 0 {
		f.Count = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// SetQuota sets the requests left before 429 (and the limit).
func (s *Server) SetQuota(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quota, s.remaining = n, n
}

// Remaining is the quota left.
func (s *Server) Remaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remaining
}

// Requests is the number of requests served, and by path when path is given (a substring).
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if path == "" {
		return s.requests
	}
	n := 0
	for p, c := range s.byPath {
		if strings.Contains(p, path) {
			n += c
		}
	}
	return n
}

type answer struct {
	status int
	body   any
	header http.Header
}

func msg(status int, m any) answer { return answer{status: status, body: map[string]any{"message": m}} }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.byPath[r.Method+" "+r.URL.Path]++
	var fault *Fault
	for _, f := range s.faults {
		if f.Count > 0 && strings.Contains(r.URL.Path, f.Path) {
			if f.After > 0 {
				f.After--
				continue
			}
			f.Count--
			fault = f
			break
		}
	}
	if fault != nil && fault.Hang {
		s.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}
	if fault != nil && !fault.Truncate {
		s.mu.Unlock()
		ct := fault.ContentType
		if ct == "" {
			ct = "application/json"
		}
		for k, v := range fault.Header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(fault.Status)
		_, _ = w.Write([]byte(fault.Body))
		return
	}
	a, user := s.authAndRoute(r)
	etag := ""
	var body []byte
	if a.body != nil {
		body, _ = json.Marshal(a.body)
		if r.Method == http.MethodGet && a.status == 200 {
			sum := sha256.Sum256(body)
			etag = `W/"` + hex.EncodeToString(sum[:16]) + `"`
		}
	}
	notModified := etag != "" && r.Header.Get("If-None-Match") == etag
	limited := false
	if user != "" && !notModified && a.status != 401 {
		if s.remaining <= 0 {
			limited = true
		} else {
			s.remaining--
		}
	}
	h := w.Header()
	for k, v := range a.header {
		h[k] = v
	}
	h.Set("RateLimit-Limit", strconv.Itoa(s.quota))
	h.Set("RateLimit-Remaining", strconv.Itoa(s.remaining))
	h.Set("RateLimit-Observed", strconv.Itoa(s.quota-s.remaining))
	h.Set("RateLimit-Reset", strconv.FormatInt(s.reset.Unix(), 10))
	s.mu.Unlock()
	h.Set("Content-Type", "application/json")
	if limited {
		h.Set("Retry-After", "60")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"message":"429 Too Many Requests"}`))
		return
	}
	if etag != "" {
		h.Set("ETag", etag)
	}
	if notModified {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(a.status)
	if fault != nil && fault.Truncate {
		body = body[:len(body)/2]
	}
	_, _ = w.Write(body)
}

// authAndRoute is called with s.mu held.
func (s *Server) authAndRoute(r *http.Request) (answer, string) {
	tok := r.Header.Get("Private-Token")
	if tok == "" {
		tok = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	user, ok := s.tokens[tok]
	if !ok || s.expired[tok] {
		return msg(401, "401 Unauthorized"), ""
	}
	return s.route(r, user), user
}

func (s *Server) project(seg string) (int64, bool) {
	p, err := url.PathUnescape(seg)
	if err != nil {
		return 0, false
	}
	if id, err := strconv.ParseInt(p, 10, 64); err == nil {
		_, ok := s.projects[id]
		return id, ok
	}
	for id, path := range s.projects {
		if path == p {
			return id, true
		}
	}
	return 0, false
}

func (s *Server) route(r *http.Request, user string) answer {
	parts := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/api/v4/"), "/")
	q := r.URL.Query()
	get, post, put := r.Method == http.MethodGet, r.Method == http.MethodPost, r.Method == http.MethodPut
	switch {
	case len(parts) == 1 && parts[0] == "user" && get:
		return answer{status: 200, body: s.users[user]}
	case len(parts) == 1 && parts[0] == "users" && get:
		out := []*User{}
		if u, ok := s.users[q.Get("username")]; ok {
			out = append(out, u)
		}
		return answer{status: 200, body: out}
	case len(parts) < 2 || parts[0] != "projects":
		return msg(404, "404 Not Found")
	}
	pid, ok := s.project(parts[1])
	if !ok {
		return msg(404, "404 Project Not Found")
	}
	if pid != s.projectID {
		if len(parts) == 2 && get {
			return answer{status: 200, body: map[string]any{"id": pid, "path_with_namespace": s.projects[pid]}}
		}
		return msg(404, "404 Project Not Found")
	}
	rest := parts[2:]
	switch {
	case len(rest) == 0 && get:
		return answer{status: 200, body: map[string]any{"id": pid, "path_with_namespace": s.path}}
	case len(rest) == 1 && rest[0] == "merge_requests" && get:
		return s.listMRs(r)
	case len(rest) == 2 && rest[0] == "merge_requests" && get:
		m := s.mr(rest[1])
		if m == nil {
			return msg(404, "404 Not found")
		}
		return answer{status: 200, body: s.mrJSON(m)}
	case len(rest) == 3 && rest[0] == "members" && rest[1] == "all" && get:
		id, _ := strconv.ParseInt(rest[2], 10, 64)
		lvl, ok := s.members[id]
		if !ok {
			return msg(404, "404 Not found")
		}
		for _, u := range s.users {
			if u.ID == id {
				return answer{status: 200, body: map[string]any{"id": id, "username": u.Username, "access_level": lvl, "state": "active"}}
			}
		}
		return msg(404, "404 Not found")
	case len(rest) == 2 && rest[0] == "statuses" && post:
		return s.setStatus(r, rest[1], user)
	case len(rest) == 4 && rest[0] == "repository" && rest[1] == "commits" && rest[3] == "statuses" && get:
		return s.listStatuses(r, rest[2])
	case len(rest) == 3 && rest[0] == "merge_requests" && rest[2] == "notes":
		m := s.mr(rest[1])
		if m == nil {
			return msg(404, "404 Not found")
		}
		if get {
			return s.listNotes(r, m.IID)
		}
		if post {
			return s.writeNote(r, m.IID, 0, user)
		}
	case len(rest) == 3 && rest[0] == "merge_requests" && rest[2] == "resource_label_events" && get:
		m := s.mr(rest[1])
		if m == nil {
			return msg(404, "404 Not found")
		}
		return paginate(r, s.events[m.IID])
	case len(rest) == 4 && rest[0] == "merge_requests" && rest[2] == "notes" && put:
		m := s.mr(rest[1])
		if m == nil {
			return msg(404, "404 Not found")
		}
		id, _ := strconv.ParseInt(rest[3], 10, 64)
		return s.writeNote(r, m.IID, id, user)
	}
	return msg(404, "404 Not Found")
}

func (s *Server) mr(seg string) *MR {
	iid, err := strconv.ParseInt(seg, 10, 64)
	if err != nil {
		return nil
	}
	return s.mrs[iid]
}

func (s *Server) mrJSON(m *MR) map[string]any {
	labels := m.Labels
	if labels == nil {
		labels = []string{}
	}
	return map[string]any{
		"id": m.IID + 1000, "iid": m.IID, "project_id": s.projectID, "title": m.Title, "state": m.State,
		"draft": m.Draft, "work_in_progress": m.Draft, "sha": m.SHA, "source_branch": m.SourceBranch,
		"target_branch": m.TargetBranch, "source_project_id": m.SourceProjectID, "target_project_id": s.projectID,
		"labels": labels, "author": s.users[m.Author], "created_at": m.created, "updated_at": m.UpdatedAt,
	}
}

// paginate cuts items to the page asked for and sets GitLab's pagination headers.
func paginate[T any](r *http.Request, items []T) answer {
	q := r.URL.Query()
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per <= 0 {
		per = 20
	}
	if per > 100 {
		per = 100
	}
	page, _ := strconv.Atoi(q.Get("page"))
	if page <= 0 {
		page = 1
	}
	pages := (len(items) + per - 1) / per
	if pages == 0 {
		pages = 1
	}
	lo, hi := min((page-1)*per, len(items)), min(page*per, len(items))
	h := http.Header{}
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(per))
	h.Set("X-Total", strconv.Itoa(len(items)))
	h.Set("X-Total-Pages", strconv.Itoa(pages))
	next := ""
	if page < pages {
		next = strconv.Itoa(page + 1)
		u := *r.URL
		qq := u.Query()
		qq.Set("page", next)
		u.RawQuery = qq.Encode()
		h.Set("Link", `<http://`+r.Host+u.String()+`>; rel="next"`)
	}
	h.Set("X-Next-Page", next)
	out := append([]T{}, items[lo:hi]...)
	return answer{status: 200, body: out, header: h}
}

func (s *Server) listMRs(r *http.Request) answer {
	q := r.URL.Query()
	var ms []*MR
	for _, m := range s.mrs {
		if st := q.Get("state"); st == "" || st == "all" || st == m.State {
			ms = append(ms, m)
		}
	}
	byUpdated := q.Get("order_by") == "updated_at"
	asc := q.Get("sort") == "asc"
	sort.Slice(ms, func(i, j int) bool {
		a, b := ms[i].created, ms[j].created
		if byUpdated {
			a, b = ms[i].UpdatedAt, ms[j].UpdatedAt
		}
		if asc {
			return a.Before(b)
		}
		return a.After(b)
	})
	out := make([]map[string]any, len(ms))
	for i, m := range ms {
		out[i] = s.mrJSON(m)
	}
	return paginate(r, out)
}

func (s *Server) setStatus(r *http.Request, sha, user string) answer {
	_ = r.ParseForm()
	in := map[string]string{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var raw map[string]any
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
			return msg(400, "400 Bad request - invalid JSON")
		}
		for k, v := range raw {
			in[k] = fmt.Sprint(v)
		}
	} else {
		for k := range r.Form {
			in[k] = r.Form.Get(k)
		}
	}
	switch in["state"] {
	case "pending", "running", "success", "failed", "canceled", "skipped":
	default:
		return answer{status: 400, body: map[string]any{"error": "state does not have a valid value"}}
	}
	name := in["name"]
	if name == "" {
		name = in["context"]
	}
	if name == "" {
		name = "default"
	}
	// GitLab keeps one running-or-pending record per name and ref and moves it through its state machine; the
	// same state again is an invalid transition (400), and the record's description is left as it was.
	for _, o := range s.statuses[sha] {
		if o.Name != name || o.Ref != in["ref"] || (o.Status != "pending" && o.Status != "running") {
			continue
		}
		if o.Status == in["state"] {
			ev := map[string]string{"pending": "enqueue", "running": "run"}[o.Status]
			return msg(400, fmt.Sprintf("Cannot transition status via :%s from :%s (Reason(s): Status cannot transition via \"%s\")", ev, o.Status, ev))
		}
		if in["state"] == "pending" {
			return msg(400, `Cannot transition status via :enqueue from :running (Reason(s): Status cannot transition via "enqueue")`)
		}
		o.Status, o.Description, o.TargetURL = in["state"], in["description"], in["target_url"]
		s.tick()
		return answer{status: 201, body: o}
	}
	st := &status{ID: s.id(), SHA: sha, Ref: in["ref"], Status: in["state"], Name: name,
		TargetURL: in["target_url"], Description: in["description"], CreatedAt: s.tick(), Author: *s.users[user]}
	s.statuses[sha] = append(s.statuses[sha], st)
	return answer{status: 201, body: st}
}

func (s *Server) listStatuses(r *http.Request, sha string) answer {
	var all []*status
	for _, st := range s.statuses[sha] {
		if name := r.URL.Query().Get("name"); name == "" || st.Name == name {
			all = append(all, st)
		}
	}
	var out []*status
	if r.URL.Query().Get("all") == "true" {
		out = append(out, all...)
	} else {
		seen := map[string]bool{}
		for i := len(all) - 1; i >= 0; i-- {
			if !seen[all[i].Name] {
				seen[all[i].Name] = true
				out = append(out, all[i])
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return paginate(r, out)
}

func (s *Server) listNotes(r *http.Request, iid int64) answer {
	ns := append([]*note{}, s.notes[iid]...)
	if r.URL.Query().Get("sort") != "asc" {
		sort.SliceStable(ns, func(i, j int) bool { return ns[i].ID > ns[j].ID })
	}
	return paginate(r, ns)
}

func (s *Server) writeNote(r *http.Request, iid, id int64, user string) answer {
	var in struct {
		Body string `json:"body"`
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			return msg(400, "400 Bad request - invalid JSON")
		}
	} else {
		_ = r.ParseForm()
		in.Body = r.Form.Get("body")
	}
	if in.Body == "" {
		return answer{status: 400, body: map[string]any{"error": "body is missing"}}
	}
	if len([]rune(in.Body)) > NoteLimit {
		return msg(400, map[string][]string{"note": {"is too long (maximum is 1000000 characters)"}})
	}
	t := s.tick()
	if id == 0 {
		n := &note{ID: s.id(), Body: in.Body, Author: *s.users[user], CreatedAt: t, UpdatedAt: t}
		s.notes[iid] = append(s.notes[iid], n)
		return answer{status: 201, body: n}
	}
	for _, n := range s.notes[iid] {
		if n.ID == id {
			if n.Author.Username != user {
				return msg(403, "403 Forbidden")
			}
			n.Body, n.UpdatedAt = in.Body, t
			return answer{status: 200, body: n}
		}
	}
	return msg(404, "404 Note Not Found")
}
