package github

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	gh "github.com/google/go-github/v89/github"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/schema/redact"
)

// Defaults and GitHub's limits.
const (
	DefaultBaseURL = "https://api.github.com/"
	DefaultTimeout = 30 * time.Second
	// CommentLimit is GitHub's longest issue comment body, in characters.
	CommentLimit = 65536
	// StatusDescriptionLimit is the longest status description berth sends.
	StatusDescriptionLimit = 140
	perPage                = 100
	// maxBody bounds what one answer may hold.
	maxBody = 32 << 20
	// quoteLimit bounds what an error quotes of the server's words.
	quoteLimit = 300
)

// CutNote ends a comment that was cut to the limit.
const CutNote = "\n\n… (cut: the rest did not fit in GitHub's 65,536-character comment limit)"

// Options configure a GitHub forge.
type Options struct {
	// BaseURL is the REST API root, with or without a trailing slash: https://api.github.com/ (DefaultBaseURL)
	// or https://HOST/api/v3/ for GitHub Enterprise Server.
	BaseURL string
	// Repository is "owner/name".
	Repository string
	// Token is the token's value, read by the caller from its reference. It is registered with schema/redact
	// and never logged. Exactly one of Token and App is set.
	Token string
	// App authenticates as a GitHub App installation instead of with a token.
	App *App
	// Now is the clock for App tokens (time.Now when nil).
	Now func() time.Time
	// Observer, when set, is told of every request (forge.Observer; op "token" for an App token) and of the
	// X-RateLimit-Remaining of every answer that carries it.
	Observer forge.Observer
	// Timeout bounds each request (DefaultTimeout).
	Timeout time.Duration
	// Transport is the HTTP transport (http.DefaultTransport when nil).
	Transport http.RoundTripper
}

// Forge is one GitHub repository. It is safe for concurrent use.
type Forge struct {
	client      *gh.Client
	owner, repo string

	mu   sync.Mutex
	self string // the token's login, read once with GET /user (an App's: "<slug>[bot]", from GET /app)
	app  *installation

	rateMu sync.Mutex
	rate   gh.Rate // the rate-limit headers of the last answer

	cacheMu sync.Mutex
	cache   map[string]cached // by request path: the last answer and its ETag
}

// cached is one answer kept for conditional reads.
type cached struct {
	etag string
	body []byte
	next int
}

// Cache bounds: an answer larger than maxCached is not kept, and the cache is emptied when it holds maxEntries.
const (
	maxCached  = 1 << 20
	maxEntries = 512
)

// Rate is what the last answer's X-RateLimit headers said (zero before any answer): for the
// berth_forge_ratelimit_remaining metric.
func (f *Forge) Rate() (remaining, limit int, reset time.Time) {
	f.rateMu.Lock()
	defer f.rateMu.Unlock()
	return f.rate.Remaining, f.rate.Limit, f.rate.Reset.Time
}

// do sends req through the client and keeps the rate-limit headers of a real answer.
func (f *Forge) do(req *http.Request) (*gh.Response, error) {
	resp, err := f.client.BareDo(req)
	if resp != nil && resp.Response != nil && resp.Header.Get(gh.HeaderRateLimit) != "" {
		f.rateMu.Lock()
		f.rate = resp.Rate
		f.rateMu.Unlock()
	}
	return resp, err
}

var _ forge.Forge = (*Forge)(nil)

var (
	namePart = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)
	login    = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$`)
	hexSHA   = regexp.MustCompile(`^[0-9a-fA-F]{7,64}$`)
)

// New checks o and returns the forge. It makes no request.
func New(o Options) (*Forge, error) {
	owner, repo, ok := strings.Cut(o.Repository, "/")
	if !ok || !namePart.MatchString(owner) || !namePart.MatchString(repo) || owner == "." || owner == ".." ||
		repo == "." || repo == ".." {
		return nil, fmt.Errorf("github: repository %q is not owner/name", o.Repository)
	}
	if (o.Token == "") == (o.App == nil) {
		return nil, errors.New("github: exactly one of a token and a GitHub App is needed")
	}
	if o.Token != "" {
		redact.Register(o.Token)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	base := o.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("github: base URL %q is not an http(s) URL", redact.String(base))
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	rt := forge.ObserveTransport(o.Transport, "github", o.Observer, gh.HeaderRateRemaining)
	opts := []gh.ClientOptionsFunc{gh.WithURLs(&base, &base), gh.WithUserAgent("berth")}
	var app *installation
	if o.App != nil {
		in, err := newInstallation(*o.App, base, now, rt)
		if err != nil {
			return nil, err
		}
		rt = &appAuth{in: in, next: rt}
		app = in
	} else {
		opts = append(opts, gh.WithAuthToken(o.Token))
	}
	hc := &http.Client{Timeout: timeout, Transport: rt}
	c, err := gh.NewClient(append(opts, gh.WithHTTPClient(hc))...)
	if err != nil {
		return nil, fmt.Errorf("github: %w", redact.Error(err))
	}
	return &Forge{client: c, owner: owner, repo: repo, app: app}, nil
}

// Kind is "github".
func (f *Forge) Kind() string { return "github" }

// Limits are GitHub's.
func (f *Forge) Limits() forge.Limits {
	return forge.Limits{CommentBytes: CommentLimit, StatusDescription: StatusDescriptionLimit}
}

func (f *Forge) path(format string, a ...any) string {
	return fmt.Sprintf("repos/%s/%s/", f.owner, f.repo) + fmt.Sprintf(format, a...)
}

// get sends one GET (with If-None-Match when etag is set) and decodes its JSON into v. It reports a 304.
func (f *Forge) get(ctx context.Context, op, path, etag string, v any) (resp *gh.Response, notModified bool, err error) {
	req, err := f.client.NewRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, false, f.fail(op, nil, err)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err = f.do(req)
	if resp != nil && resp.StatusCode == http.StatusNotModified && etag != "" {
		return resp, true, nil
	}
	if err != nil {
		return resp, false, f.fail(op, resp, err)
	}
	defer resp.Body.Close()
	return resp, false, f.decode(op, resp, v)
}

// read is a GET that revalidates: when the same path was read before with an ETag, it sends If-None-Match and,
// on a 304 (which costs no quota), decodes the kept answer. It returns the next page (0 for the last).
func (f *Forge) read(ctx context.Context, op, path string, v any) (next int, err error) {
	f.cacheMu.Lock()
	c, ok := f.cache[path]
	f.cacheMu.Unlock()
	req, err := f.client.NewRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return 0, f.fail(op, nil, err)
	}
	if ok {
		req.Header.Set("If-None-Match", c.etag)
	}
	resp, err := f.do(req)
	if ok && resp != nil && resp.StatusCode == http.StatusNotModified {
		if err := json.Unmarshal(c.body, v); err != nil {
			return 0, &forge.Error{Forge: "github", Op: op, Err: err}
		}
		return c.next, nil
	}
	if err != nil {
		return 0, f.fail(op, resp, err)
	}
	defer resp.Body.Close()
	b, err := f.decodeBody(op, resp, v)
	if err != nil {
		return 0, err
	}
	if tag := resp.Header.Get("ETag"); tag != "" && len(b) <= maxCached {
		f.cacheMu.Lock()
		if f.cache == nil || len(f.cache) >= maxEntries {
			f.cache = map[string]cached{}
		}
		f.cache[path] = cached{etag: tag, body: b, next: resp.NextPage}
		f.cacheMu.Unlock()
	}
	return resp.NextPage, nil
}

// send sends a request with a JSON body and decodes the answer into v.
func (f *Forge) send(ctx context.Context, op, method, path string, body, v any) error {
	req, err := f.client.NewRequest(ctx, method, path, body)
	if err != nil {
		return f.fail(op, nil, err)
	}
	resp, err := f.do(req)
	if err != nil {
		return f.fail(op, resp, err)
	}
	defer resp.Body.Close()
	return f.decode(op, resp, v)
}

// decode reads a whole JSON answer: an empty body, another content type or a document that does not parse to
// the end (a truncated page) is an error, never an empty value.
func (f *Forge) decode(op string, resp *gh.Response, v any) error {
	_, err := f.decodeBody(op, resp, v)
	return err
}

// decodeBody is decode, returning the body it read.
func (f *Forge) decodeBody(op string, resp *gh.Response, v any) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, f.fail(op, resp, fmt.Errorf("read the answer: %w", err))
	}
	bad := func(what string) error {
		return &forge.Error{Forge: "github", Op: op, Status: resp.StatusCode, Temporary: true,
			Message: what + ": " + redact.Body(b, quoteLimit), Err: errors.New(what)}
	}
	if len(b) > maxBody {
		return nil, bad("answer too large")
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil, bad(fmt.Sprintf("answer is %q, not JSON", mt))
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, bad("empty answer")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return nil, bad("answer does not parse (" + err.Error() + ")")
	}
	if dec.More() {
		return nil, bad("answer has trailing data")
	}
	return b, nil
}

// fail turns a client error into a *forge.Error with the status, GitHub's words and what the headers say.
func (f *Forge) fail(op string, resp *gh.Response, err error) error {
	var fe *forge.Error
	if errors.As(err, &fe) {
		return fe // the App token could not be had: that call's own error
	}
	e := &forge.Error{Forge: "github", Op: op, Err: redact.Error(err)}
	if resp != nil && resp.Response != nil {
		e.Status = resp.StatusCode
	}
	var (
		er    *gh.ErrorResponse
		rl    *gh.RateLimitError
		abuse *gh.AbuseRateLimitError
		ne    net.Error
	)
	switch {
	case errors.As(err, &rl):
		e.Status = rl.Response.StatusCode
		e.Message = redact.Body([]byte(rl.Message), quoteLimit)
		e.Temporary = true
		if d := time.Until(rl.Rate.Reset.Time); d > 0 {
			e.RetryAfter = d.Round(time.Second)
		}
	case errors.As(err, &abuse):
		e.Status = abuse.Response.StatusCode
		e.Message = redact.Body([]byte(abuse.Message), quoteLimit)
		e.Temporary = true
		e.RetryAfter = abuse.GetRetryAfter()
	case errors.As(err, &er):
		e.Status = er.Response.StatusCode
		msg := er.Message
		for _, d := range er.Errors {
			if d.Message != "" {
				msg += "; " + d.Message
			} else if d.Code != "" {
				msg += fmt.Sprintf("; %s %s", d.Field, d.Code)
			}
		}
		if msg == "" && er.Response.Body != nil {
			b, _ := io.ReadAll(io.LimitReader(er.Response.Body, 4096))
			msg = string(b)
		}
		e.Message = redact.Body([]byte(msg), quoteLimit)
		e.Temporary = e.Status >= 500 || e.Status == http.StatusTooManyRequests
		if ra := er.Response.Header.Get("Retry-After"); ra != "" {
			if s, err := strconv.Atoi(ra); err == nil && s > 0 {
				e.RetryAfter = time.Duration(s) * time.Second
				e.Temporary = true
			}
		}
		switch e.Status {
		case http.StatusNotFound:
			e.Err = fmt.Errorf("%w: %w", forge.ErrNotFound, e.Err)
		case http.StatusUnauthorized:
			e.Message = "credentials rejected (token expired or revoked): " + e.Message
		}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		e.Temporary = true
		e.Message = "timed out"
	case e.Status == 0:
		// A transport failure: the host may answer later.
		e.Temporary = !errors.Is(err, context.Canceled)
	}
	return e
}

// ListOpen lists every open pull request, most recently updated first, 100 per page. The ETag it returns holds
// the ETag of every page; with it, every page is asked with If-None-Match, and only when all of them are 304 is
// the listing NotModified. Sorting by update time makes any change (a push, a label, a new or closed pull request)
// alter the page it is on and, when it moves, the first page, so an unchanged set of 304s means an unchanged
// listing. On the first changed page the whole listing is read again without conditions.
func (f *Forge) ListOpen(ctx context.Context, etag string) (forge.List, error) {
	const op = "list pull requests"
	ctx = forge.WithOp(ctx, forge.OpListOpen)
	if prev := decodeETag(etag); len(prev) > 0 {
		same := true
		for i, tag := range prev {
			var prs []*gh.PullRequest
			_, nm, err := f.get(ctx, op, f.pullsPage(i+1), tag, &prs)
			if err != nil {
				return forge.List{}, err
			}
			if !nm {
				same = false
				break
			}
		}
		if same {
			return forge.List{ETag: etag, NotModified: true}, nil
		}
	}
	var (
		out  []forge.Change
		tags []string
		seen = map[int]bool{}
	)
	for page := 1; ; page++ {
		var prs []*gh.PullRequest
		resp, _, err := f.get(ctx, op, f.pullsPage(page), "", &prs)
		if err != nil {
			return forge.List{}, err
		}
		if prs == nil {
			return forge.List{}, &forge.Error{Forge: "github", Op: op, Status: resp.StatusCode, Temporary: true,
				Message: "answer is not a list", Err: errors.New("answer is not a list")}
		}
		tags = append(tags, resp.Header.Get("ETag"))
		for _, pr := range prs {
			c, err := f.change(pr)
			if err != nil {
				return forge.List{}, &forge.Error{Forge: "github", Op: op, Status: resp.StatusCode, Err: err,
					Message: err.Error()}
			}
			// A pull request updated while the listing is read moves to the first page: it may be seen twice
			// (kept once) or, having moved behind the reader, not at all; callers confirm a disappearance with
			// Get before acting on it.
			if !seen[c.Number] {
				seen[c.Number] = true
				out = append(out, c)
			}
		}
		if resp.NextPage == 0 {
			break
		}
		if page >= 1000 {
			return forge.List{}, &forge.Error{Forge: "github", Op: op, Message: "more than 1000 pages",
				Err: errors.New("too many pages")}
		}
	}
	if out == nil {
		out = []forge.Change{}
	}
	return forge.List{Changes: out, ETag: encodeETag(tags)}, nil
}

func (f *Forge) pullsPage(page int) string {
	return f.path("pulls?state=open&sort=updated&direction=desc&per_page=%d&page=%d", perPage, page)
}

// encodeETag packs the pages' ETags in one opaque string; an empty tag (a server that sent none) makes the
// listing unconditional next time.
func encodeETag(tags []string) string {
	for _, t := range tags {
		if t == "" {
			return ""
		}
	}
	b, _ := json.Marshal(tags)
	return "gh1." + base64.RawURLEncoding.EncodeToString(b)
}

func decodeETag(etag string) []string {
	s, ok := strings.CutPrefix(etag, "gh1.")
	if !ok {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil
	}
	var tags []string
	if json.Unmarshal(b, &tags) != nil || len(tags) > 1000 {
		return nil
	}
	for _, t := range tags {
		if t == "" || strings.ContainsAny(t, "\r\n") {
			return nil
		}
	}
	return tags
}

// Get reads one pull request, whatever its state.
func (f *Forge) Get(ctx context.Context, number int) (forge.Change, error) {
	const op = "get pull request"
	ctx = forge.WithOp(ctx, forge.OpGet)
	if number <= 0 {
		return forge.Change{}, &forge.Error{Forge: "github", Op: op, Err: fmt.Errorf("bad number %d", number)}
	}
	var pr gh.PullRequest
	if _, err := f.read(ctx, op, f.path("pulls/%d", number), &pr); err != nil {
		return forge.Change{}, err
	}
	c, err := f.change(&pr)
	if err != nil {
		return forge.Change{}, &forge.Error{Forge: "github", Op: op, Err: err, Message: err.Error()}
	}
	if c.Number != number {
		return forge.Change{}, &forge.Error{Forge: "github", Op: op,
			Err: fmt.Errorf("asked for #%d, got #%d", number, c.Number)}
	}
	return c, nil
}

// change maps a pull request; one without a number, state or head SHA is an error (a partial answer).
func (f *Forge) change(pr *gh.PullRequest) (forge.Change, error) {
	if pr == nil || pr.GetNumber() <= 0 || pr.GetState() == "" || pr.GetHead().GetSHA() == "" {
		return forge.Change{}, errors.New("a pull request in the answer lacks its number, state or head")
	}
	if !hexSHA.MatchString(pr.GetHead().GetSHA()) {
		return forge.Change{}, fmt.Errorf("pull request #%d has a head %q that is not a commit SHA", pr.GetNumber(),
			redact.Body([]byte(pr.GetHead().GetSHA()), 80))
	}
	c := forge.Change{
		Number:    pr.GetNumber(),
		Title:     bound(pr.GetTitle(), maxTitle),
		Author:    bound(pr.GetUser().GetLogin(), maxName),
		Draft:     pr.GetDraft(),
		HeadSHA:   pr.GetHead().GetSHA(),
		HeadRef:   bound(pr.GetHead().GetRef(), maxRef),
		HeadRepo:  bound(pr.GetHead().GetRepo().GetFullName(), maxName),
		BaseRef:   bound(pr.GetBase().GetRef(), maxRef),
		UpdatedAt: pr.GetUpdatedAt().Time,
	}
	switch {
	case pr.GetState() == "open":
		c.State = forge.StateOpen
	case pr.GetMerged() || pr.MergedAt != nil:
		c.State = forge.StateMerged
	case pr.GetState() == "closed":
		c.State = forge.StateClosed
	default:
		return forge.Change{}, fmt.Errorf("pull request #%d has an unknown state %q", c.Number,
			redact.Body([]byte(pr.GetState()), 40))
	}
	// A deleted fork leaves head.repo null: it is not the base repository, so it is a fork.
	c.Fork = !strings.EqualFold(c.HeadRepo, f.owner+"/"+f.repo)
	for _, l := range pr.Labels {
		if l.GetName() != "" && len(c.Labels) < maxLabels {
			c.Labels = append(c.Labels, bound(l.GetName(), maxLabel))
		}
	}
	return c, nil
}

// Permission is user's access: GitHub's admin and maintain are admin and write, write is write, triage and read
// are read.
func (f *Forge) Permission(ctx context.Context, user string) (forge.Permission, error) {
	const op = "get permission"
	ctx = forge.WithOp(ctx, forge.OpPermission)
	if !login.MatchString(user) {
		return forge.PermissionNone, &forge.Error{Forge: "github", Op: op,
			Err: fmt.Errorf("%q is not a GitHub login", redact.Body([]byte(user), 60))}
	}
	var p gh.RepositoryPermissionLevel
	if _, err := f.read(ctx, op, f.path("collaborators/%s/permission", url.PathEscape(user)), &p); err != nil {
		return forge.PermissionNone, err
	}
	switch p.GetRoleName() {
	case "maintain":
		return forge.PermissionWrite, nil
	case "triage":
		return forge.PermissionRead, nil
	}
	switch p.GetPermission() {
	case "admin":
		return forge.PermissionAdmin, nil
	case "write":
		return forge.PermissionWrite, nil
	case "read":
		return forge.PermissionRead, nil
	case "none":
		return forge.PermissionNone, nil
	}
	return forge.PermissionNone, &forge.Error{Forge: "github", Op: op,
		Err: fmt.Errorf("unknown permission %q", redact.Body([]byte(p.GetPermission()), 40))}
}

// combined reads every page of the commit's combined status: the latest status per context.
func (f *Forge) combined(ctx context.Context, op, sha string) ([]*gh.RepoStatus, error) {
	if !hexSHA.MatchString(sha) {
		return nil, &forge.Error{Forge: "github", Op: op, Err: fmt.Errorf("%q is not a commit SHA",
			redact.Body([]byte(sha), 80))}
	}
	var all []*gh.RepoStatus
	for page := 1; page <= 100; page++ {
		var cs gh.CombinedStatus
		next, err := f.read(ctx, op, f.path("commits/%s/status?per_page=%d&page=%d", sha, perPage, page), &cs)
		if err != nil {
			return nil, err
		}
		if cs.State == nil {
			return nil, &forge.Error{Forge: "github", Op: op, Temporary: true,
				Message: "answer is not a combined status", Err: errors.New("not a combined status")}
		}
		all = append(all, cs.Statuses...)
		if next == 0 {
			return all, nil
		}
	}
	return nil, &forge.Error{Forge: "github", Op: op, Err: errors.New("too many pages")}
}

// Statuses are the latest states of the commit's statuses, by context.
func (f *Forge) Statuses(ctx context.Context, sha string) (map[string]forge.StatusState, error) {
	ctx = forge.WithOp(ctx, forge.OpStatuses)
	sts, err := f.combined(ctx, "get statuses", sha)
	if err != nil {
		return nil, err
	}
	out := make(map[string]forge.StatusState, len(sts))
	for _, s := range sts {
		out[s.GetContext()] = forge.StatusState(s.GetState())
	}
	return out, nil
}

// SetStatus reads the commit's statuses and creates s only when its context does not already have the same
// state and (cut) description: one GET when nothing changed, a GET and a POST otherwise.
func (f *Forge) SetStatus(ctx context.Context, s forge.Status) error {
	const op = "set status"
	ctx = forge.WithOp(ctx, forge.OpSetStatus)
	switch s.State {
	case forge.StatusPending, forge.StatusSuccess, forge.StatusFailure, forge.StatusError:
	default:
		return &forge.Error{Forge: "github", Op: op, Err: fmt.Errorf("unknown state %q", s.State)}
	}
	if s.Context == "" {
		return &forge.Error{Forge: "github", Op: op, Err: errors.New("no context")}
	}
	desc := cut(s.Description, StatusDescriptionLimit, "…")
	sts, err := f.combined(ctx, op, s.SHA)
	if err != nil {
		return err
	}
	for _, st := range sts {
		if st.GetContext() == s.Context && st.GetState() == string(s.State) && st.GetDescription() == desc {
			return nil
		}
	}
	in := gh.RepoStatus{State: gh.Ptr(string(s.State)), Context: gh.Ptr(s.Context), Description: gh.Ptr(desc)}
	if s.TargetURL != "" {
		in.TargetURL = gh.Ptr(s.TargetURL)
	}
	var out gh.RepoStatus
	return f.send(ctx, op, http.MethodPost, f.path("statuses/%s", s.SHA), in, &out)
}

// Comments lists every comment of the pull request, oldest first.
func (f *Forge) Comments(ctx context.Context, number int) ([]forge.Comment, error) {
	const op = "list comments"
	ctx = forge.WithOp(ctx, forge.OpComments)
	if number <= 0 {
		return nil, &forge.Error{Forge: "github", Op: op, Err: fmt.Errorf("bad number %d", number)}
	}
	out := []forge.Comment{}
	for page := 1; page <= 1000; page++ {
		var cs []*gh.IssueComment
		next, err := f.read(ctx, op, f.path("issues/%d/comments?per_page=%d&page=%d", number, perPage, page), &cs)
		if err != nil {
			return nil, err
		}
		if cs == nil {
			return nil, &forge.Error{Forge: "github", Op: op, Temporary: true,
				Message: "answer is not a list", Err: errors.New("answer is not a list")}
		}
		for _, c := range cs {
			out = append(out, forge.Comment{ID: c.GetID(), Author: c.GetUser().GetLogin(), Body: c.GetBody(),
				Created: c.GetCreatedAt().Time})
		}
		if next == 0 {
			return out, nil
		}
	}
	return nil, &forge.Error{Forge: "github", Op: op, Err: errors.New("too many pages")}
}

// Self is the token's login, read with GET /user on first use and kept (a failure is not kept); for a GitHub App,
// "<app slug>[bot]" from GET /app.
func (f *Forge) Self(ctx context.Context) (string, error) {
	ctx = forge.WithOp(ctx, forge.OpSelf)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.self != "" {
		return f.self, nil
	}
	if f.app != nil {
		login, err := f.app.login(ctx)
		if err != nil {
			return "", err
		}
		f.self = login
		return login, nil
	}
	var u gh.User
	if _, _, err := f.get(ctx, "get user", "user", "", &u); err != nil {
		return "", err
	}
	if u.GetLogin() == "" {
		return "", &forge.Error{Forge: "github", Op: "get user", Err: errors.New("the answer has no login")}
	}
	f.self = u.GetLogin()
	return f.self, nil
}

// UpsertComment keeps berth's one comment holding marker: the first comment written by the token's own user
// (Self) whose body starts with marker is edited in place, unless it already says the same; otherwise a comment
// is created. A look-alike written by anyone else is never edited. body is prefixed with marker when it does not
// start with it, and cut to CommentLimit characters with CutNote.
func (f *Forge) UpsertComment(ctx context.Context, number int, marker, body string) (int64, error) {
	const op = "upsert comment"
	ctx = forge.WithOp(ctx, forge.OpUpsertComment)
	if marker == "" || !strings.HasPrefix(marker, "<!--") || !strings.HasSuffix(marker, "-->") {
		return 0, &forge.Error{Forge: "github", Op: op, Err: errors.New("the marker is not an HTML comment")}
	}
	if !strings.HasPrefix(body, marker) {
		body = marker + "\n" + body
	}
	body = cut(body, CommentLimit, CutNote)
	self, err := f.Self(ctx)
	if err != nil {
		return 0, err
	}
	cs, err := f.Comments(ctx, number)
	if err != nil {
		return 0, err
	}
	for _, c := range cs {
		if c.Author != self || !strings.HasPrefix(c.Body, marker) {
			continue
		}
		if c.Body == body {
			return c.ID, nil
		}
		var out gh.IssueComment
		if err := f.send(ctx, op, http.MethodPatch, f.path("issues/comments/%d", c.ID),
			gh.IssueComment{Body: gh.Ptr(body)}, &out); err != nil {
			return 0, err
		}
		return c.ID, nil
	}
	var out gh.IssueComment
	if err := f.send(ctx, op, http.MethodPost, f.path("issues/%d/comments", number),
		gh.IssueComment{Body: gh.Ptr(body)}, &out); err != nil {
		return 0, err
	}
	if out.GetID() == 0 {
		return 0, &forge.Error{Forge: "github", Op: op, Err: errors.New("the answer has no comment id")}
	}
	return out.GetID(), nil
}

// Bounds on the untrusted text of a pull request, well above GitHub's own (a title is at most 256 characters, a
// label name 50): text is kept as it is up to them, as valid UTF-8, and cut beyond.
const (
	maxTitle  = 1024
	maxRef    = 1024
	maxName   = 256
	maxLabel  = 256
	maxLabels = 100
)

// bound makes untrusted text valid UTF-8 of at most limit characters. It interprets nothing.
func bound(s string, limit int) string {
	return cut(strings.ToValidUTF8(s, "\uFFFD"), limit, "")
}

// cut shortens s to at most limit characters, ending it with note when it was cut.
func cut(s string, limit int, note string) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	keep := limit - utf8.RuneCountInString(note)
	i, n := 0, 0
	for i < len(s) && n < keep {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n++
	}
	return s[:i] + note
}

// LabelEvents lists the pull request's "labeled" and "unlabeled" issue events (GET
// /repos/{o}/{r}/issues/{n}/events, every page, 100 a page), oldest first. Each page is revalidated with its ETag,
// so an unchanged history costs no quota. An event without a label name is an error (a partial answer); one
// without an actor (a deleted account shows as "ghost", but a null is possible) has Actor "".
func (f *Forge) LabelEvents(ctx context.Context, number int) ([]forge.LabelEvent, error) {
	const op = "list label events"
	ctx = forge.WithOp(ctx, forge.OpLabelEvents)
	if number <= 0 {
		return nil, &forge.Error{Forge: "github", Op: op, Err: fmt.Errorf("bad number %d", number)}
	}
	out := []forge.LabelEvent{}
	for page := 1; page <= 1000; page++ {
		var evs []*gh.IssueEvent
		next, err := f.read(ctx, op, f.path("issues/%d/events?per_page=%d&page=%d", number, perPage, page), &evs)
		if err != nil {
			return nil, err
		}
		if evs == nil {
			return nil, &forge.Error{Forge: "github", Op: op, Temporary: true,
				Message: "answer is not a list", Err: errors.New("answer is not a list")}
		}
		for _, e := range evs {
			if e == nil || (e.GetEvent() != "labeled" && e.GetEvent() != "unlabeled") {
				continue
			}
			if e.GetLabel().GetName() == "" || e.CreatedAt == nil {
				return nil, &forge.Error{Forge: "github", Op: op, Temporary: true,
					Message: "a label event lacks its label or time", Err: errors.New("partial label event")}
			}
			out = append(out, forge.LabelEvent{
				Label:   bound(e.GetLabel().GetName(), maxLabel),
				Actor:   bound(e.GetActor().GetLogin(), maxName),
				Added:   e.GetEvent() == "labeled",
				Created: e.GetCreatedAt().Time,
			})
		}
		if next == 0 {
			// GitHub lists an issue's events oldest first; a stable sort keeps that order for equal times.
			slices.SortStableFunc(out, func(a, b forge.LabelEvent) int { return a.Created.Compare(b.Created) })
			return out, nil
		}
	}
	return nil, &forge.Error{Forge: "github", Op: op, Err: errors.New("too many pages")}
}

var _ forge.LabelHistory = (*Forge)(nil)
