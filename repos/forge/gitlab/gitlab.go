package gitlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/schema/redact"
)

// Defaults.
const (
	DefaultBaseURL = "https://gitlab.com/api/v4"
	DefaultTimeout = 30 * time.Second
	// NoteLimit is GitLab's longest note, in characters.
	NoteLimit = 1_000_000
	// StatusDescriptionLimit is our cut for a status description (GitLab documents none).
	StatusDescriptionLimit = 255
	perPage                = 100
	maxPages               = 1000
	messageBytes           = 512
)

// CutNote ends a comment that was cut to the limit.
const CutNote = "\n\n… (cut: the comment was longer than GitLab accepts)"

// Options configure a Forge.
type Options struct {
	// BaseURL is the API root, e.g. https://gitlab.example.com/api/v4 (DefaultBaseURL when empty).
	BaseURL string
	// Project is the project's path ("group/name") or numeric id.
	Project string
	// Token is the token's value (the caller reads it from its reference); it is registered with redact.
	Token string
	// Timeout bounds each call (DefaultTimeout when zero).
	Timeout time.Duration
	// HTTPClient is the transport (http.DefaultClient's when nil).
	HTTPClient *http.Client
	// Now is the clock (time.Now when nil), for RateLimit-Reset.
	Now func() time.Time
	// Observer, when set, is told of every request (forge.Observer) and of the RateLimit-Remaining of every
	// answer that carries it.
	Observer forge.Observer
}

// Forge is one GitLab project.
type Forge struct {
	c       *gl.Client
	project string
	timeout time.Duration
	now     func() time.Time

	mu       sync.Mutex
	self     string
	projects map[int64]string

	labelMu sync.Mutex
	labels  map[int]labelHistory // by merge request iid: the last complete history and its pages' ETags
}

// labelHistory is one merge request's label events as last read, kept to answer a revalidated (304) read.
type labelHistory struct {
	tags   etags
	events []forge.LabelEvent
}

// maxLabelHistories bounds the kept histories: the map is emptied when it holds this many.
const maxLabelHistories = 512

type noLimit struct{}

func (noLimit) Wait(context.Context) error { return nil }

// New makes a Forge.
func New(o Options) (*Forge, error) {
	if o.Project == "" {
		return nil, errors.New("gitlab: a project is required")
	}
	if o.Token == "" {
		return nil, errors.New("gitlab: a token is required")
	}
	redact.Register(o.Token)
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	opts := []gl.ClientOptionFunc{gl.WithBaseURL(o.BaseURL), gl.WithoutRetries(), gl.WithCustomLimiter(noLimit{})}
	if o.HTTPClient != nil || o.Observer != nil {
		hc := &http.Client{}
		if o.HTTPClient != nil {
			c := *o.HTTPClient
			hc = &c
		}
		hc.Transport = forge.ObserveTransport(hc.Transport, "gitlab", o.Observer, "RateLimit-Remaining")
		opts = append(opts, gl.WithHTTPClient(hc))
	}
	c, err := gl.NewClient(o.Token, opts...)
	if err != nil {
		return nil, fmt.Errorf("gitlab: %w", redact.Error(err))
	}
	return &Forge{c: c, project: o.Project, timeout: o.Timeout, now: o.Now, projects: map[int64]string{}}, nil
}

// Kind is "gitlab".
func (f *Forge) Kind() string { return "gitlab" }

// Limits are GitLab's note limit and our status description cut.
func (f *Forge) Limits() forge.Limits {
	return forge.Limits{CommentBytes: NoteLimit, StatusDescription: StatusDescriptionLimit}
}

// ctx bounds one Forge call by the timeout and labels its requests with op for the Observer.
func (f *Forge) ctx(ctx context.Context, op string) (context.Context, context.CancelFunc) {
	return context.WithTimeout(forge.WithOp(ctx, op), f.timeout)
}

// fail turns a client answer into a *forge.Error.
func (f *Forge) fail(op string, resp *gl.Response, err error) error {
	e := &forge.Error{Forge: "gitlab", Op: op, Err: redact.Error(err)}
	var hr *http.Response
	if resp != nil {
		hr = resp.Response
	}
	var er *gl.ErrorResponse
	if errors.As(err, &er) {
		if er.Response != nil {
			hr = er.Response
		}
		e.Message = redact.Body(er.Body, messageBytes)
	}
	if hr != nil {
		e.Status = hr.StatusCode
	}
	switch {
	case e.Status == http.StatusNotFound:
		e.Err = forge.ErrNotFound
		if e.Message == "" {
			e.Message = "404 Not Found"
		}
	case e.Status == 0:
		e.Temporary = true // transport failure or timeout
	case e.Status == http.StatusTooManyRequests || e.Status >= 500:
		e.Temporary = true
	case e.Status >= 200 && e.Status < 300:
		// The body was not the JSON asked for: an HTML page or a page cut short.
		e.Temporary = true
		e.Message = "the answer is not the JSON expected (an HTML page or a truncated body)"
	}
	if hr != nil {
		e.RetryAfter = f.retryAfter(hr)
		if e.Status == http.StatusForbidden && e.RetryAfter > 0 {
			e.Temporary = true
		}
	}
	return e
}

func (f *Forge) retryAfter(r *http.Response) time.Duration {
	if v := r.Header.Get("Retry-After"); v != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			if d := t.Sub(f.now()); d > 0 {
				return d
			}
		}
	}
	if r.StatusCode == http.StatusTooManyRequests && r.Header.Get("RateLimit-Remaining") == "0" {
		if n, err := strconv.ParseInt(r.Header.Get("RateLimit-Reset"), 10, 64); err == nil {
			if d := time.Unix(n, 0).Sub(f.now()); d > 0 {
				return d
			}
		}
	}
	return 0
}

// etags is the ListOpen ETag: one per page.
type etags []string

func parseETags(s string) etags {
	var e etags
	if s == "" || json.Unmarshal([]byte(s), &e) != nil {
		return nil
	}
	return e
}

// ListOpen lists every open merge request (all pages) or fails.
func (f *Forge) ListOpen(ctx context.Context, etag string) (forge.List, error) {
	ctx, cancel := f.ctx(ctx, forge.OpListOpen)
	defer cancel()
	if prev := parseETags(etag); len(prev) > 0 {
		same, err := f.unchanged(ctx, prev)
		if err != nil {
			return forge.List{}, err
		}
		if same {
			return forge.List{ETag: etag, NotModified: true}, nil
		}
	}
	var (
		out  []forge.Change
		tags etags
	)
	page := int64(1)
	for n := 0; ; n++ {
		if n >= maxPages {
			return forge.List{}, &forge.Error{Forge: "gitlab", Op: "list merge requests", Message: "too many pages"}
		}
		mrs, resp, err := f.listPage(ctx, page, "")
		if err != nil {
			return forge.List{}, f.fail("list merge requests", resp, err)
		}
		for _, m := range mrs {
			c, err := f.change(ctx, m)
			if err != nil {
				return forge.List{}, err
			}
			out = append(out, c)
		}
		tags = append(tags, resp.Header.Get("ETag"))
		if resp.NextPage == 0 {
			break
		}
		page = resp.NextPage
	}
	l := forge.List{Changes: out}
	if !contains(tags, "") {
		b, _ := json.Marshal(tags)
		l.ETag = string(b)
	}
	if l.Changes == nil {
		l.Changes = []forge.Change{}
	}
	return l, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (f *Forge) listPage(ctx context.Context, page int64, ifNoneMatch string) ([]*gl.BasicMergeRequest, *gl.Response, error) {
	opt := &gl.ListProjectMergeRequestsOptions{
		ListOptions: gl.ListOptions{Page: page, PerPage: perPage},
		State:       gl.Ptr("opened"), OrderBy: gl.Ptr("updated_at"), Sort: gl.Ptr("desc"),
	}
	ro := []gl.RequestOptionFunc{gl.WithContext(ctx)}
	if ifNoneMatch != "" {
		ro = append(ro, gl.WithHeader("If-None-Match", ifNoneMatch))
	}
	return f.c.MergeRequests.ListProjectMergeRequests(f.project, opt, ro...)
}

// unchanged asks each page with its previous ETag; true when every page answered 304 and no page follows.
func (f *Forge) unchanged(ctx context.Context, prev etags) (bool, error) {
	for i, tag := range prev {
		_, resp, err := f.listPage(ctx, int64(i+1), tag)
		if resp != nil && resp.StatusCode == http.StatusNotModified {
			if i == len(prev)-1 && resp.Header.Get("X-Next-Page") != "" {
				return false, nil
			}
			continue
		}
		if err != nil {
			return false, f.fail("list merge requests", resp, err)
		}
		return false, nil
	}
	return true, nil
}

func (f *Forge) change(ctx context.Context, m *gl.BasicMergeRequest) (forge.Change, error) {
	c := forge.Change{
		Number: int(m.IID), Title: m.Title, State: state(m.State), Draft: m.Draft,
		HeadSHA: m.SHA, HeadRef: m.SourceBranch, BaseRef: m.TargetBranch,
		Fork: m.SourceProjectID != m.TargetProjectID,
	}
	if m.Author != nil {
		c.Author = m.Author.Username
	}
	if m.UpdatedAt != nil {
		c.UpdatedAt = *m.UpdatedAt
	}
	if len(m.Labels) > 0 {
		c.Labels = append([]string(nil), m.Labels...)
	}
	if m.SourceProjectID == 0 {
		// The source project (a fork) was deleted: the head lives nowhere berth can name.
		c.Fork = true
		return c, nil
	}
	path, err := f.projectPath(ctx, m.SourceProjectID)
	if errors.Is(err, forge.ErrNotFound) {
		// A fork the token cannot see, or one deleted since: not the change's absence.
		c.Fork = true
		return c, nil
	}
	if err != nil {
		return forge.Change{}, err
	}
	c.HeadRepo = path
	return c, nil
}

func (f *Forge) projectPath(ctx context.Context, id int64) (string, error) {
	f.mu.Lock()
	p, ok := f.projects[id]
	f.mu.Unlock()
	if ok {
		return p, nil
	}
	pr, resp, err := f.c.Projects.GetProject(id, nil, gl.WithContext(ctx))
	if err != nil {
		return "", f.fail("get source project", resp, err)
	}
	f.mu.Lock()
	f.projects[id] = pr.PathWithNamespace
	f.mu.Unlock()
	return pr.PathWithNamespace, nil
}

func state(s string) string {
	switch s {
	case "merged":
		return forge.StateMerged
	case "closed":
		return forge.StateClosed
	default: // opened, locked
		return forge.StateOpen
	}
}

// Get reads one merge request.
func (f *Forge) Get(ctx context.Context, number int) (forge.Change, error) {
	ctx, cancel := f.ctx(ctx, forge.OpGet)
	defer cancel()
	m, resp, err := f.c.MergeRequests.GetMergeRequest(f.project, int64(number), nil, gl.WithContext(ctx))
	if err != nil {
		return forge.Change{}, f.fail("get merge request", resp, err)
	}
	return f.change(ctx, &m.BasicMergeRequest)
}

// Permission is user's access level, mapped onto forge permissions.
func (f *Forge) Permission(ctx context.Context, user string) (forge.Permission, error) {
	ctx, cancel := f.ctx(ctx, forge.OpPermission)
	defer cancel()
	us, resp, err := f.c.Users.ListUsers(&gl.ListUsersOptions{Username: gl.Ptr(user)}, gl.WithContext(ctx))
	if err != nil {
		return forge.PermissionNone, f.fail("find user", resp, err)
	}
	var id int64
	for _, u := range us {
		if u.Username == user {
			id = u.ID
		}
	}
	if id == 0 {
		return forge.PermissionNone, &forge.Error{Forge: "gitlab", Op: "find user", Status: 404, Message: "no such user", Err: forge.ErrNotFound}
	}
	m, resp, err := f.c.ProjectMembers.GetInheritedProjectMember(f.project, id, gl.WithContext(ctx))
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return forge.PermissionNone, nil
		}
		return forge.PermissionNone, f.fail("get member", resp, err)
	}
	switch lvl := int(m.AccessLevel); {
	case lvl >= 40:
		return forge.PermissionAdmin, nil
	case lvl >= 30:
		return forge.PermissionWrite, nil
	case lvl >= 20:
		return forge.PermissionRead, nil
	default:
		return forge.PermissionNone, nil
	}
}

func (f *Forge) statuses(ctx context.Context, sha, name string) ([]*gl.CommitStatus, error) {
	var all []*gl.CommitStatus
	page := int64(1)
	for n := 0; ; n++ {
		if n >= maxPages {
			return nil, &forge.Error{Forge: "gitlab", Op: "list statuses", Message: "too many pages"}
		}
		opt := &gl.GetCommitStatusesOptions{ListOptions: gl.ListOptions{Page: page, PerPage: perPage}}
		if name != "" {
			opt.Name = gl.Ptr(name)
		}
		ss, resp, err := f.c.Commits.GetCommitStatuses(f.project, sha, opt, gl.WithContext(ctx))
		if err != nil {
			return nil, f.fail("list statuses", resp, err)
		}
		all = append(all, ss...)
		if resp.NextPage == 0 {
			return all, nil
		}
		page = resp.NextPage
	}
}

func readState(s string) forge.StatusState {
	switch s {
	case "success":
		return forge.StatusSuccess
	case "failed":
		return forge.StatusFailure
	case "canceled", "skipped":
		return forge.StatusError
	default: // pending, running, created
		return forge.StatusPending
	}
}

func writeState(s forge.StatusState) (gl.BuildStateValue, error) {
	switch s {
	case forge.StatusPending:
		return gl.Pending, nil
	case forge.StatusSuccess:
		return gl.Success, nil
	case forge.StatusFailure, forge.StatusError:
		return gl.Failed, nil
	}
	return "", fmt.Errorf("gitlab: unknown status state %q", s)
}

// Statuses are the latest state of each status name on sha (GitLab lists the newest first).
func (f *Forge) Statuses(ctx context.Context, sha string) (map[string]forge.StatusState, error) {
	ctx, cancel := f.ctx(ctx, forge.OpStatuses)
	defer cancel()
	ss, err := f.statuses(ctx, sha, "")
	if err != nil {
		return nil, err
	}
	out := map[string]forge.StatusState{}
	for _, s := range latest(ss) {
		out[s.Name] = readState(s.Status)
	}
	return out, nil
}

// latest keeps the newest status per name (highest id).
func latest(ss []*gl.CommitStatus) map[string]*gl.CommitStatus {
	m := map[string]*gl.CommitStatus{}
	for _, s := range ss {
		if o, ok := m[s.Name]; !ok || s.ID > o.ID {
			m[s.Name] = s
		}
	}
	return m
}

// cut bounds s to n characters, ending with tail when cut.
func cut(s string, n int, tail string) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	keep := n - utf8.RuneCountInString(tail)
	if keep < 0 {
		keep = 0
	}
	r := []rune(s)
	return string(r[:keep]) + tail
}

// SetStatus sets a commit status unless the newest one of that name has the same state and description.
func (f *Forge) SetStatus(ctx context.Context, s forge.Status) error {
	st, err := writeState(s.State)
	if err != nil {
		return err
	}
	ctx, cancel := f.ctx(ctx, forge.OpSetStatus)
	defer cancel()
	desc := cut(s.Description, StatusDescriptionLimit, "…")
	ss, err := f.statuses(ctx, s.SHA, s.Context)
	if err != nil {
		return err
	}
	if o, ok := latest(ss)[s.Context]; ok {
		if o.Status == string(st) && o.Description == desc {
			return nil
		}
		// GitLab refuses a pending or running status the state it holds, and pending after running: a new
		// pending description is sent as running (read back as pending); a running one keeps its words.
		if st == gl.Pending && o.Status == string(gl.Pending) {
			st = gl.Running
		} else if st == gl.Pending && o.Status == string(gl.Running) {
			return nil
		}
		if o.Status == string(st) && o.Description == desc {
			return nil
		}
	}
	opt := &gl.SetCommitStatusOptions{State: st, Name: gl.Ptr(s.Context), Description: gl.Ptr(desc)}
	if s.TargetURL != "" {
		opt.TargetURL = gl.Ptr(s.TargetURL)
	}
	_, resp, err := f.c.Commits.SetCommitStatus(f.project, s.SHA, opt, gl.WithContext(ctx))
	var er *gl.ErrorResponse
	if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusBadRequest &&
		strings.Contains(string(er.Body), "Cannot transition status via") && strings.Contains(string(er.Body), ":"+string(st)) {
		// Someone else moved it to this state in between: it is what was asked.
		return nil
	}
	if err != nil {
		return f.fail("set status", resp, err)
	}
	return nil
}

func (f *Forge) notes(ctx context.Context, number int) ([]*gl.Note, error) {
	var all []*gl.Note
	page := int64(1)
	for n := 0; ; n++ {
		if n >= maxPages {
			return nil, &forge.Error{Forge: "gitlab", Op: "list notes", Message: "too many pages"}
		}
		opt := &gl.ListMergeRequestNotesOptions{ListOptions: gl.ListOptions{Page: page, PerPage: perPage},
			OrderBy: gl.Ptr("created_at"), Sort: gl.Ptr("asc")}
		ns, resp, err := f.c.Notes.ListMergeRequestNotes(f.project, int64(number), opt, gl.WithContext(ctx))
		if err != nil {
			return nil, f.fail("list notes", resp, err)
		}
		for _, n := range ns {
			if !n.System {
				all = append(all, n)
			}
		}
		if resp.NextPage == 0 {
			return all, nil
		}
		page = resp.NextPage
	}
}

// Comments lists the merge request's notes (not system notes), oldest first.
func (f *Forge) Comments(ctx context.Context, number int) ([]forge.Comment, error) {
	ctx, cancel := f.ctx(ctx, forge.OpComments)
	defer cancel()
	ns, err := f.notes(ctx, number)
	if err != nil {
		return nil, err
	}
	out := make([]forge.Comment, 0, len(ns))
	for _, n := range ns {
		c := forge.Comment{ID: n.ID, Author: n.Author.Username, Body: n.Body}
		if n.CreatedAt != nil {
			c.Created = *n.CreatedAt
		}
		out = append(out, c)
	}
	return out, nil
}

func (f *Forge) me(ctx context.Context) (string, error) {
	f.mu.Lock()
	self := f.self
	f.mu.Unlock()
	if self != "" {
		return self, nil
	}
	u, resp, err := f.c.Users.CurrentUser(gl.WithContext(forge.WithOp(ctx, forge.OpSelf)))
	if err != nil {
		return "", f.fail("get token user", resp, err)
	}
	f.mu.Lock()
	f.self = u.Username
	f.mu.Unlock()
	return u.Username, nil
}

// UpsertComment keeps one note holding marker, by the token's user: it edits it in place (nothing is sent when
// the body is the same) or creates it.
func (f *Forge) UpsertComment(ctx context.Context, number int, marker, body string) (int64, error) {
	if marker == "" {
		return 0, errors.New("gitlab: UpsertComment needs a marker")
	}
	ctx, cancel := f.ctx(ctx, forge.OpUpsertComment)
	defer cancel()
	if !strings.HasPrefix(body, marker) {
		body = marker + "\n" + body
	}
	body = cut(body, NoteLimit, CutNote)
	self, err := f.me(ctx)
	if err != nil {
		return 0, err
	}
	ns, err := f.notes(ctx, number)
	if err != nil {
		return 0, err
	}
	for _, n := range ns {
		if n.Author.Username != self || !strings.HasPrefix(n.Body, marker) {
			continue
		}
		if n.Body == body {
			return n.ID, nil
		}
		_, resp, err := f.c.Notes.UpdateMergeRequestNote(f.project, int64(number), n.ID,
			&gl.UpdateMergeRequestNoteOptions{Body: gl.Ptr(body)}, gl.WithContext(ctx))
		if err != nil {
			return 0, f.fail("edit note", resp, err)
		}
		return n.ID, nil
	}
	n, resp, err := f.c.Notes.CreateMergeRequestNote(f.project, int64(number),
		&gl.CreateMergeRequestNoteOptions{Body: gl.Ptr(body)}, gl.WithContext(ctx))
	if err != nil {
		return 0, f.fail("create note", resp, err)
	}
	return n.ID, nil
}

var _ forge.Forge = (*Forge)(nil)

// Bounds on the untrusted text of a label event: GitLab's own are lower (a label title is at most 255 characters,
// a username 255).
const (
	maxLabel = 256
	maxName  = 256
)

// LabelEvents lists the merge request's resource label events (GET
// /projects/:id/merge_requests/:iid/resource_label_events, every page, 100 a page), oldest first. When the history
// was read before, each page is asked again with its ETag and, when every one is a 304 and no page follows, the
// kept history is the answer. An event whose label was since deleted (GitLab answers "label": null) has Label "";
// one without a time is an error (a partial answer).
func (f *Forge) LabelEvents(ctx context.Context, number int) ([]forge.LabelEvent, error) {
	const op = "list label events"
	if number <= 0 {
		return nil, &forge.Error{Forge: "gitlab", Op: op, Err: fmt.Errorf("bad number %d", number)}
	}
	ctx, cancel := f.ctx(ctx, forge.OpLabelEvents)
	defer cancel()
	f.labelMu.Lock()
	prev, ok := f.labels[number]
	f.labelMu.Unlock()
	if ok {
		same, err := f.labelsUnchanged(ctx, number, prev.tags)
		if err != nil {
			return nil, err
		}
		if same {
			return slices.Clone(prev.events), nil
		}
	}
	out := []forge.LabelEvent{}
	var tags etags
	page := int64(1)
	for n := 0; ; n++ {
		if n >= maxPages {
			return nil, &forge.Error{Forge: "gitlab", Op: op, Message: "too many pages", Err: errors.New("too many pages")}
		}
		evs, resp, err := f.labelPage(ctx, number, page, "")
		if err != nil {
			return nil, f.fail(op, resp, err)
		}
		if evs == nil {
			return nil, &forge.Error{Forge: "gitlab", Op: op, Status: resp.StatusCode, Temporary: true,
				Message: "the answer is not a list", Err: errors.New("answer is not a list")}
		}
		for _, e := range evs {
			if e == nil {
				continue
			}
			if e.CreatedAt == nil || (e.Action != "add" && e.Action != "remove") {
				return nil, &forge.Error{Forge: "gitlab", Op: op, Status: resp.StatusCode, Temporary: true,
					Message: "a label event lacks its time or action", Err: errors.New("partial label event")}
			}
			out = append(out, forge.LabelEvent{Label: bound(e.Label.Name, maxLabel), Actor: bound(e.User.Username, maxName),
				Added: e.Action == "add", Created: *e.CreatedAt})
		}
		tags = append(tags, resp.Header.Get("ETag"))
		if resp.NextPage == 0 {
			break
		}
		page = resp.NextPage
	}
	slices.SortStableFunc(out, func(a, b forge.LabelEvent) int { return a.Created.Compare(b.Created) })
	f.labelMu.Lock()
	if contains(tags, "") {
		delete(f.labels, number)
	} else {
		if f.labels == nil || len(f.labels) >= maxLabelHistories {
			f.labels = map[int]labelHistory{}
		}
		f.labels[number] = labelHistory{tags: tags, events: slices.Clone(out)}
	}
	f.labelMu.Unlock()
	return out, nil
}

func (f *Forge) labelPage(ctx context.Context, number int, page int64, ifNoneMatch string) ([]*gl.LabelEvent, *gl.Response, error) {
	opt := &gl.ListLabelEventsOptions{ListOptions: gl.ListOptions{Page: page, PerPage: perPage}}
	ro := []gl.RequestOptionFunc{gl.WithContext(ctx)}
	if ifNoneMatch != "" {
		ro = append(ro, gl.WithHeader("If-None-Match", ifNoneMatch))
	}
	return f.c.ResourceLabelEvents.ListMergeRequestsLabelEvents(f.project, int64(number), opt, ro...)
}

// labelsUnchanged asks each page of a history with its ETag: true when every page answered 304 and none follows.
func (f *Forge) labelsUnchanged(ctx context.Context, number int, prev etags) (bool, error) {
	for i, tag := range prev {
		_, resp, err := f.labelPage(ctx, number, int64(i+1), tag)
		if resp != nil && resp.StatusCode == http.StatusNotModified {
			if i == len(prev)-1 && resp.Header.Get("X-Next-Page") != "" {
				return false, nil
			}
			continue
		}
		if err != nil {
			return false, f.fail("list label events", resp, err)
		}
		return false, nil
	}
	return true, nil
}

// bound makes untrusted text valid UTF-8 of at most limit characters. It interprets nothing.
func bound(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	return string([]rune(s)[:limit])
}

var _ forge.LabelHistory = (*Forge)(nil)
