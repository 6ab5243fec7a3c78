package gitea

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	sdk "code.gitea.io/sdk/gitea"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/schema/redact"
)

// Defaults of Options.
const (
	// DefaultTimeout bounds one HTTP request when the caller's context has no earlier deadline.
	DefaultTimeout = 30 * time.Second
	// DefaultPageSize is the page size asked for (Gitea's default MAX_RESPONSE_ITEMS is 50: a larger one is
	// silently lowered, which the paging loop copes with).
	DefaultPageSize = 50
	// DefaultCommentBytes is the comment budget: Gitea names no limit (doc.go); this fits a MySQL TEXT column,
	// the smallest store a Gitea or Forgejo may sit on.
	DefaultCommentBytes = 65535
	// StatusDescription is the longest status description berth sends (GitHub's 140, kept on every forge).
	StatusDescription = 140
	// maxPages bounds a listing: more pages than this is an error, never a cut listing.
	maxPages = 200
	// maxText bounds each untrusted text field of a change.
	maxText = 4096
	// maxErrBody is how much of an error answer is kept to quote.
	maxErrBody = 64 << 10
	// quoteBytes is how much of the forge's words an error quotes.
	quoteBytes = 512
	// maxBody bounds one successful answer read without the SDK.
	maxBody = 32 << 20
)

// Options configure a Forge.
type Options struct {
	// BaseURL is the server's root (https://gitea.example or https://codeberg.org), without /api/v1.
	BaseURL string
	// Repository is "owner/name".
	Repository string
	// Token is the access token's value (the caller reads it from its reference). It is registered with
	// schema/redact and sent only in the Authorization header.
	Token string
	// HTTPClient carries the requests; nil means a plain client. Its own Timeout, if any, still applies.
	HTTPClient *http.Client
	// Timeout bounds each request (DefaultTimeout when zero).
	Timeout time.Duration
	// PageSize is the page size of listings (DefaultPageSize when zero).
	PageSize int
	// CommentBytes is the comment budget (DefaultCommentBytes when zero).
	CommentBytes int
	// Now is the clock for Retry-After dates and X-RateLimit-Reset (time.Now when nil).
	Now func() time.Time
	// Observer, when set, is told of every request (forge.Observer). Gitea sends no rate-limit headers by
	// default; when a proxy in front sends X-RateLimit-Remaining, it is reported too.
	Observer forge.Observer
}

// Forge is one repository on a Gitea or Forgejo server.
type Forge struct {
	opts        Options
	owner, repo string
	hc          *http.Client

	mu      sync.Mutex
	version string // the server's version, read once; "" until then
	me      string // the token's user, read once
	set     map[string]statusKey

	labelMu sync.Mutex
	labels  map[int]labelHistory // by pull request: the last complete history and its pages' ETags
}

// labelHistory is one pull request's label events as last read, kept to answer a revalidated (304) read; only
// when every page came with an ETag (Gitea itself sends none: doc.go).
type labelHistory struct {
	tags   []string
	events []forge.LabelEvent
}

// maxLabelHistories bounds the kept histories: the map is emptied when it holds this many.
const maxLabelHistories = 512

type statusKey struct {
	state forge.StatusState
	desc  string
}

// New checks opts and returns a Forge. It makes no request: the server's version and the token's user are read on
// first use.
func New(opts Options) (*Forge, error) {
	if opts.BaseURL == "" {
		return nil, errors.New("gitea: BaseURL is required")
	}
	owner, repo, ok := strings.Cut(opts.Repository, "/")
	if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
		return nil, fmt.Errorf("gitea: Repository %q is not owner/name", opts.Repository)
	}
	if opts.Token == "" {
		return nil, errors.New("gitea: Token is required")
	}
	redact.Register(opts.Token)
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CommentBytes <= 0 {
		opts.CommentBytes = DefaultCommentBytes
	}
	opts.BaseURL = strings.TrimSuffix(strings.TrimSuffix(opts.BaseURL, "/"), "/api/v1")
	base := opts.HTTPClient
	if base == nil {
		base = &http.Client{}
	}
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	hc := *base
	hc.Transport = &recorder{next: forge.ObserveTransport(rt, "gitea", opts.Observer, "X-RateLimit-Remaining")}
	return &Forge{opts: opts, owner: owner, repo: repo, hc: &hc, set: map[string]statusKey{}}, nil
}

// Kind is "gitea" (Forgejo included).
func (f *Forge) Kind() string { return "gitea" }

// Limits are the comment budget and the status description length.
func (f *Forge) Limits() forge.Limits {
	return forge.Limits{CommentBytes: f.opts.CommentBytes, StatusDescription: StatusDescription}
}

// --- one request ---

// call is what the transport saw of one request, carried to it in the request's context.
type call struct {
	ifNoneMatch string
	status      int
	header      http.Header
	body        []byte // an error answer's body, or the start of a successful one
}

type callKey struct{}

// recorder adds If-None-Match and keeps the status, headers and (bounded) body of the answer for the call in the
// request's context, so errors can quote the forge's own words.
type recorder struct{ next http.RoundTripper }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	c, _ := req.Context().Value(callKey{}).(*call)
	if c != nil && c.ifNoneMatch != "" {
		req = req.Clone(req.Context())
		req.Header.Set("If-None-Match", c.ifNoneMatch)
	}
	resp, err := r.next.RoundTrip(req)
	if err != nil || c == nil {
		return resp, err
	}
	c.status, c.header = resp.StatusCode, resp.Header
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
		_ = resp.Body.Close()
		c.body = b
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return resp, nil
	}
	resp.Body = &head{ReadCloser: resp.Body, c: c}
	return resp, nil
}

// head keeps the first bytes of a successful body, to quote when it does not decode.
type head struct {
	io.ReadCloser
	c *call
}

func (h *head) Read(p []byte) (int, error) {
	n, err := h.ReadCloser.Read(p)
	if room := 1024 - len(h.c.body); room > 0 && n > 0 {
		h.c.body = append(h.c.body, p[:min(n, room)]...)
	}
	return n, err
}

// client is an SDK client bound to ctx for one call (the SDK keeps its context in the client, so each call gets
// its own; they share the transport and its connections). The server's version is read once, with GET
// /api/v1/version, and given to later clients so that the SDK does not ask again.
func (f *Forge) client(ctx context.Context) (*sdk.Client, error) {
	opts := []sdk.ClientOption{sdk.SetHTTPClient(f.hc), sdk.SetToken(f.opts.Token), sdk.SetUserAgent("berth"),
		sdk.SetContext(ctx)}
	f.mu.Lock()
	v := f.version
	f.mu.Unlock()
	if v == "" {
		c := &call{}
		cl, err := sdk.NewClient(f.opts.BaseURL, append(opts, sdk.SetGiteaVersion(""),
			sdk.SetContext(context.WithValue(forge.WithOp(ctx, forge.OpVersion), callKey{}, c)))...)
		if err != nil {
			return nil, &forge.Error{Forge: "gitea", Op: "version", Err: redact.Error(err)}
		}
		raw, resp, err := cl.ServerVersion()
		if err != nil || c.status/100 != 2 {
			return nil, f.fail("version", c, resp, err)
		}
		v = strings.TrimSpace(raw)
		if _, err := sdk.NewClient(f.opts.BaseURL, sdk.SetGiteaVersion(v)); err != nil || v == "" {
			v = "unknown" // Gitea may hide its version (doc.go); the SDK then assumes the newest API
		}
		f.mu.Lock()
		f.version = v
		f.mu.Unlock()
	}
	if v == "unknown" {
		v = ""
	}
	return sdk.NewClient(f.opts.BaseURL, append(opts, sdk.SetGiteaVersion(v))...)
}

// do runs one SDK call with a timeout and a recorder; it returns the call record and the SDK's error.
func (f *Forge) do(ctx context.Context, op, ifNoneMatch string, fn func(*sdk.Client) (*sdk.Response, error)) (*call, error) {
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	cl, err := f.client(ctx)
	if err != nil {
		return nil, err
	}
	c := &call{ifNoneMatch: ifNoneMatch}
	cl.SetContext(context.WithValue(ctx, callKey{}, c))
	resp, err := fn(cl)
	if resp != nil && resp.StatusCode == http.StatusNotModified && ifNoneMatch != "" {
		return c, nil
	}
	if err != nil || c.status/100 != 2 {
		return c, f.fail(op, c, resp, err)
	}
	return c, nil
}

// fail makes a *forge.Error of a failed call.
func (f *Forge) fail(op string, c *call, resp *sdk.Response, err error) error {
	e := &forge.Error{Forge: "gitea", Op: op}
	if c != nil {
		e.Status = c.status
	}
	if e.Status == 0 && resp != nil {
		e.Status = resp.StatusCode
	}
	var body []byte
	if c != nil {
		body = c.body
	}
	if e.Status != 0 {
		var m struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &m) == nil && m.Message != "" {
			e.Message = redact.Body([]byte(m.Message), quoteBytes)
		} else if len(body) > 0 {
			e.Message = redact.Body(body, quoteBytes)
		}
	}
	switch {
	case e.Status == 0:
		e.Temporary = true // transport failure or timeout
	case e.Status == http.StatusNotFound:
		err = fmt.Errorf("%w", forge.ErrNotFound)
	case e.Status/100 == 2:
		// A 2xx that does not decode: an HTML page from a proxy, a truncated page.
		e.Temporary = true
		if e.Message != "" {
			e.Message = "answer is not the API's JSON: " + e.Message
		}
	case e.Status >= 500, e.Status == http.StatusTooManyRequests, e.Status == http.StatusRequestTimeout:
		e.Temporary = true
	case e.Status == http.StatusForbidden && c != nil && (c.header.Get("Retry-After") != "" ||
		c.header.Get("X-RateLimit-Remaining") == "0"):
		e.Temporary = true
	case e.Status == http.StatusUnauthorized:
		if e.Message == "" {
			e.Message = "credentials refused or expired"
		}
	}
	if c != nil && c.header != nil {
		e.RetryAfter = retryAfter(c.header, f.opts.Now())
	}
	if err != nil {
		e.Err = redact.Error(err)
	}
	if e.Status != 0 && e.Status != http.StatusNotFound {
		e.Err = nil // the SDK's own words repeat the body unbounded; Message holds the bounded form
	}
	return e
}

// retryAfter is how long the answer asks to wait: Retry-After (seconds or a date), else, when the quota is spent,
// until X-RateLimit-Reset (Unix seconds).
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil && t.After(now) {
			return t.Sub(now).Round(time.Second)
		}
		return 0
	}
	if h.Get("X-RateLimit-Remaining") == "0" {
		if n, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			if t := time.Unix(n, 0); t.After(now) {
				return t.Sub(now).Round(time.Second)
			}
		}
	}
	return 0
}

// --- changes ---

// etagDigest prefixes an ETag berth computed itself from the listing's content (Gitea sends none: doc.go).
const etagDigest = "berth-sha256:"

// ListOpen reads every page of the open pull requests, or fails.
func (f *Forge) ListOpen(ctx context.Context, etag string) (forge.List, error) {
	ctx = forge.WithOp(ctx, forge.OpListOpen)
	const op = "list open pull requests"
	ifNoneMatch := ""
	if etag != "" && !strings.HasPrefix(etag, etagDigest) {
		ifNoneMatch = etag
	}
	var (
		all      []forge.Change
		seen     = map[int]bool{}
		total    = -1
		firstTag string
		pages    int
	)
	for page := 1; ; {
		var prs []*sdk.PullRequest
		var resp *sdk.Response
		inm := ""
		if page == 1 {
			inm = ifNoneMatch
		}
		c, err := f.do(ctx, op, inm, func(cl *sdk.Client) (*sdk.Response, error) {
			var err error
			prs, resp, err = cl.ListRepoPullRequests(f.owner, f.repo, sdk.ListPullRequestsOptions{
				ListOptions: sdk.ListOptions{Page: page, PageSize: f.opts.PageSize}, State: sdk.StateOpen})
			return resp, err
		})
		if err != nil {
			return forge.List{}, err
		}
		if c.status == http.StatusNotModified {
			return forge.List{ETag: etag, NotModified: true}, nil
		}
		pages++
		if page == 1 {
			firstTag = c.header.Get("ETag")
		}
		if t := c.header.Get("X-Total-Count"); t != "" {
			n, err := strconv.Atoi(t)
			if err != nil {
				return forge.List{}, &forge.Error{Forge: "gitea", Op: op, Status: c.status, Temporary: true,
					Message: "X-Total-Count is not a number: " + redact.Body([]byte(t), 64)}
			}
			if total >= 0 && n != total {
				return forge.List{}, &forge.Error{Forge: "gitea", Op: op, Status: c.status, Temporary: true,
					Message: "the listing changed while it was read"}
			}
			total = n
		}
		for _, pr := range prs {
			if pr == nil {
				continue
			}
			ch := f.change(pr)
			if seen[ch.Number] {
				return forge.List{}, &forge.Error{Forge: "gitea", Op: op, Status: c.status, Temporary: true,
					Message: "the listing changed while it was read (pull request seen twice)"}
			}
			seen[ch.Number] = true
			all = append(all, ch)
		}
		if len(prs) == 0 {
			break
		}
		if resp.NextPage == 0 {
			if total >= 0 {
				break
			}
			// Neither Link nor X-Total-Count (a proxy stripped them): read on until an empty page.
			resp.NextPage = page + 1
		}
		if resp.NextPage <= page || pages >= maxPages {
			return forge.List{}, &forge.Error{Forge: "gitea", Op: op, Status: c.status,
				Message: fmt.Sprintf("paging does not end (page %d, next %d)", page, resp.NextPage)}
		}
		page = resp.NextPage
	}
	if total >= 0 && len(all) != total {
		return forge.List{}, &forge.Error{Forge: "gitea", Op: op, Status: http.StatusOK, Temporary: true,
			Message: fmt.Sprintf("incomplete listing: %d of %d pull requests", len(all), total)}
	}
	if pages == 1 && firstTag != "" {
		return forge.List{Changes: all, ETag: firstTag}, nil
	}
	b, _ := json.Marshal(all)
	sum := sha256.Sum256(b)
	tag := etagDigest + hex.EncodeToString(sum[:])
	if tag == etag {
		return forge.List{ETag: tag, NotModified: true}, nil
	}
	return forge.List{Changes: all, ETag: tag}, nil
}

// Get reads one pull request.
func (f *Forge) Get(ctx context.Context, number int) (forge.Change, error) {
	ctx = forge.WithOp(ctx, forge.OpGet)
	var pr *sdk.PullRequest
	_, err := f.do(ctx, fmt.Sprintf("get pull request %d", number), "", func(cl *sdk.Client) (*sdk.Response, error) {
		var resp *sdk.Response
		var err error
		pr, resp, err = cl.GetPullRequest(f.owner, f.repo, int64(number))
		return resp, err
	})
	if err != nil {
		return forge.Change{}, err
	}
	if pr == nil || pr.Index != int64(number) {
		return forge.Change{}, &forge.Error{Forge: "gitea", Op: fmt.Sprintf("get pull request %d", number),
			Status: http.StatusOK, Temporary: true, Message: "the answer is not that pull request"}
	}
	return f.change(pr), nil
}

func (f *Forge) change(pr *sdk.PullRequest) forge.Change {
	ch := forge.Change{Number: int(pr.Index), Title: bound(pr.Title), Draft: pr.Draft || wip(pr.Title),
		State: forge.StateOpen}
	if pr.Poster != nil {
		ch.Author = bound(pr.Poster.UserName)
	}
	switch {
	case pr.HasMerged:
		ch.State = forge.StateMerged
	case pr.State == sdk.StateClosed:
		ch.State = forge.StateClosed
	}
	base := f.owner + "/" + f.repo
	if pr.Base != nil {
		ch.BaseRef = bound(pr.Base.Ref)
		if pr.Base.Repository != nil && pr.Base.Repository.FullName != "" {
			base = pr.Base.Repository.FullName
		}
	}
	ch.Fork = true // a head whose repository is gone or unnamed is treated as a fork
	if pr.Head != nil {
		ch.HeadSHA, ch.HeadRef = bound(pr.Head.Sha), bound(pr.Head.Ref)
		if pr.Head.Repository != nil {
			ch.HeadRepo = bound(pr.Head.Repository.FullName)
			ch.Fork = !strings.EqualFold(ch.HeadRepo, base) || ch.HeadRepo == ""
		}
	}
	for _, l := range pr.Labels {
		if l != nil && len(ch.Labels) < 100 {
			ch.Labels = append(ch.Labels, bound(l.Name))
		}
	}
	if pr.Updated != nil {
		ch.UpdatedAt = pr.Updated.UTC()
	}
	return ch
}

// wip tells whether title marks a work-in-progress pull request with Gitea's default WORK_IN_PROGRESS_PREFIXES
// ("WIP:", "[WIP]", any case): servers older than the "draft" field mark drafts only so.
func wip(title string) bool {
	t := strings.ToUpper(strings.TrimSpace(title))
	return strings.HasPrefix(t, "WIP:") || strings.HasPrefix(t, "[WIP]")
}

// bound cuts untrusted text to maxText bytes at a rune boundary and replaces invalid UTF-8.
func bound(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxText {
		return s
	}
	i := maxText
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// --- permissions ---

// Permission is user's access to the repository (Gitea's "owner" counts as admin; an unknown word as none).
func (f *Forge) Permission(ctx context.Context, user string) (forge.Permission, error) {
	ctx = forge.WithOp(ctx, forge.OpPermission)
	if user == "" {
		return forge.PermissionNone, fmt.Errorf("gitea: permission of an empty user name: %w", forge.ErrNotFound)
	}
	var res *sdk.CollaboratorPermissionResult
	_, err := f.do(ctx, "permission", "", func(cl *sdk.Client) (*sdk.Response, error) {
		var resp *sdk.Response
		var err error
		res, resp, err = cl.CollaboratorPermission(f.owner, f.repo, user)
		return resp, err
	})
	if err != nil {
		return forge.PermissionNone, err
	}
	if res == nil {
		return forge.PermissionNone, nil
	}
	switch res.Permission {
	case "owner", sdk.AccessModeAdmin:
		return forge.PermissionAdmin, nil
	case sdk.AccessModeWrite:
		return forge.PermissionWrite, nil
	case sdk.AccessModeRead:
		return forge.PermissionRead, nil
	}
	return forge.PermissionNone, nil
}

// --- statuses ---

// Statuses are the newest state of each context on sha, read from every page of the statuses listing (not the
// combined status, whose SDK call takes an undecodable 200 for "no statuses": doc.go). Gitea's "warning" reads as
// failure.
func (f *Forge) Statuses(ctx context.Context, sha string) (map[string]forge.StatusState, error) {
	ctx = forge.WithOp(ctx, forge.OpStatuses)
	latest, err := f.statuses(ctx, sha)
	if err != nil {
		return nil, err
	}
	out := make(map[string]forge.StatusState, len(latest))
	for k, s := range latest {
		out[k] = state(s.State)
	}
	return out, nil
}

func state(s sdk.StatusState) forge.StatusState {
	switch s {
	case sdk.StatusPending:
		return forge.StatusPending
	case sdk.StatusSuccess:
		return forge.StatusSuccess
	case sdk.StatusError:
		return forge.StatusError
	}
	return forge.StatusFailure
}

func (f *Forge) statuses(ctx context.Context, sha string) (map[string]*sdk.Status, error) {
	const op = "list statuses"
	if sha == "" {
		return nil, &forge.Error{Forge: "gitea", Op: op, Message: "empty SHA"}
	}
	latest := map[string]*sdk.Status{}
	for page, n := 1, 0; ; n++ {
		var sts []*sdk.Status
		var resp *sdk.Response
		_, err := f.do(ctx, op, "", func(cl *sdk.Client) (*sdk.Response, error) {
			var err error
			sts, resp, err = cl.ListStatuses(f.owner, f.repo, sha, sdk.ListStatusesOption{
				ListOptions: sdk.ListOptions{Page: page, PageSize: f.opts.PageSize}})
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		for _, s := range sts {
			if s == nil {
				continue
			}
			if old, ok := latest[s.Context]; !ok || s.ID > old.ID {
				latest[s.Context] = s
			}
		}
		if resp.NextPage == 0 || len(sts) == 0 {
			return latest, nil
		}
		if resp.NextPage <= page || n >= maxPages {
			return nil, &forge.Error{Forge: "gitea", Op: op, Status: resp.StatusCode, Message: "paging does not end"}
		}
		page = resp.NextPage
	}
}

// SetStatus sets a commit status unless the same state and description are already there (as this Forge last
// set it, or as the forge lists it).
func (f *Forge) SetStatus(ctx context.Context, s forge.Status) error {
	ctx = forge.WithOp(ctx, forge.OpSetStatus)
	desc := cut(s.Description, StatusDescription)
	key := s.SHA + "\x00" + s.Context
	want := statusKey{state: s.State, desc: desc}
	f.mu.Lock()
	had, ok := f.set[key]
	f.mu.Unlock()
	if ok && had == want {
		return nil
	}
	switch s.State {
	case forge.StatusPending, forge.StatusSuccess, forge.StatusFailure, forge.StatusError:
	default:
		return &forge.Error{Forge: "gitea", Op: "set status", Message: fmt.Sprintf("state %q is not a status state", s.State)}
	}
	latest, err := f.statuses(ctx, s.SHA)
	if err != nil {
		return err
	}
	if cur, ok := latest[s.Context]; !ok || string(cur.State) != string(s.State) || cur.Description != desc {
		_, err = f.do(ctx, "set status", "", func(cl *sdk.Client) (*sdk.Response, error) {
			_, resp, err := cl.CreateStatus(f.owner, f.repo, s.SHA, sdk.CreateStatusOption{
				State: sdk.StatusState(s.State), TargetURL: s.TargetURL, Description: desc, Context: s.Context})
			return resp, err
		})
		if err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.set[key] = want
	f.mu.Unlock()
	return nil
}

// cut cuts s to at most n characters.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// --- comments ---

// Comments lists the pull request's comments, oldest first (Gitea answers them all in one page).
func (f *Forge) Comments(ctx context.Context, number int) ([]forge.Comment, error) {
	ctx = forge.WithOp(ctx, forge.OpComments)
	op := fmt.Sprintf("list comments of %d", number)
	var cs []*sdk.Comment
	c, err := f.do(ctx, op, "", func(cl *sdk.Client) (*sdk.Response, error) {
		var resp *sdk.Response
		var err error
		cs, resp, err = cl.ListIssueComments(f.owner, f.repo, int64(number), sdk.ListIssueCommentOptions{})
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	if t := c.header.Get("X-Total-Count"); t != "" {
		if n, err := strconv.Atoi(t); err != nil || n != len(cs) {
			return nil, &forge.Error{Forge: "gitea", Op: op, Status: c.status, Temporary: true,
				Message: fmt.Sprintf("incomplete listing: %d comments of %s", len(cs), redact.Body([]byte(t), 32))}
		}
	}
	out := make([]forge.Comment, 0, len(cs))
	for _, x := range cs {
		if x == nil {
			continue
		}
		cm := forge.Comment{ID: x.ID, Body: x.Body, Created: x.Created.UTC()}
		if x.Poster != nil {
			cm.Author = x.Poster.UserName
		}
		out = append(out, cm)
	}
	return out, nil
}

// self is the token's user, read once with GET /user: only its comments can be berth's.
func (f *Forge) self(ctx context.Context) (string, error) {
	ctx = forge.WithOp(ctx, forge.OpSelf)
	f.mu.Lock()
	me := f.me
	f.mu.Unlock()
	if me != "" {
		return me, nil
	}
	var u *sdk.User
	_, err := f.do(ctx, "get token user", "", func(cl *sdk.Client) (*sdk.Response, error) {
		var resp *sdk.Response
		var err error
		u, resp, err = cl.GetMyUserInfo()
		return resp, err
	})
	if err != nil {
		return "", err
	}
	if u == nil || u.UserName == "" {
		return "", &forge.Error{Forge: "gitea", Op: "get token user", Status: http.StatusOK, Temporary: true,
			Message: "the answer names no user"}
	}
	f.mu.Lock()
	f.me = u.UserName
	f.mu.Unlock()
	return u.UserName, nil
}

// UpsertComment keeps one comment holding marker on the pull request: the oldest comment by the token's user whose
// body starts with marker is edited in place (not at all when its body is already the same), or one is created.
func (f *Forge) UpsertComment(ctx context.Context, number int, marker, body string) (int64, error) {
	ctx = forge.WithOp(ctx, forge.OpUpsertComment)
	if marker == "" {
		return 0, &forge.Error{Forge: "gitea", Op: "upsert comment", Message: "empty marker"}
	}
	me, err := f.self(ctx)
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(body, marker) {
		body = marker + "\n" + body
	}
	body = fit(body, f.opts.CommentBytes)
	cs, err := f.Comments(ctx, number)
	if err != nil {
		return 0, err
	}
	for _, c := range cs {
		if !strings.EqualFold(c.Author, me) || !strings.HasPrefix(c.Body, marker) {
			continue
		}
		if c.Body == body {
			return c.ID, nil
		}
		_, err := f.do(ctx, fmt.Sprintf("edit comment %d", c.ID), "", func(cl *sdk.Client) (*sdk.Response, error) {
			_, resp, err := cl.EditIssueComment(f.owner, f.repo, c.ID, sdk.EditIssueCommentOption{Body: body})
			return resp, err
		})
		return c.ID, err
	}
	var made *sdk.Comment
	_, err = f.do(ctx, fmt.Sprintf("comment on %d", number), "", func(cl *sdk.Client) (*sdk.Response, error) {
		var resp *sdk.Response
		var err error
		made, resp, err = cl.CreateIssueComment(f.owner, f.repo, int64(number), sdk.CreateIssueCommentOption{Body: body})
		return resp, err
	})
	if err != nil {
		return 0, err
	}
	if made == nil || made.ID == 0 {
		return 0, &forge.Error{Forge: "gitea", Op: fmt.Sprintf("comment on %d", number), Status: http.StatusCreated,
			Temporary: true, Message: "the answer names no comment"}
	}
	return made.ID, nil
}

// cutNote ends a body that was cut to fit the forge's limit.
const cutNote = "\n\n… (cut to fit the forge's comment limit; the full text is on berth's page)"

// fit cuts body to at most limit bytes (which is also at most limit characters), ending with cutNote.
func fit(body string, limit int) string {
	if len(body) <= limit {
		return body
	}
	i := max(limit-len(cutNote), 0)
	for i > 0 && !utf8.RuneStart(body[i]) {
		i--
	}
	return body[:i] + cutNote
}

var _ forge.Forge = (*Forge)(nil)

// --- label events ---

// timelineEntry is what LabelEvents reads of one entry of an issue's timeline. The SDK's TimelineComment is not
// used: it types "label" as a list, where Gitea answers one object, so it cannot decode a label entry.
type timelineEntry struct {
	ID      int64     `json:"id"`
	Type    string    `json:"type"`
	Body    string    `json:"body"`
	Created time.Time `json:"created_at"`
	User    *struct {
		Login string `json:"login"`
	} `json:"user"`
	Label *struct {
		Name string `json:"name"`
	} `json:"label"`
}

// LabelEvents lists the pull request's label events, oldest first, from its timeline (GET
// /repos/{o}/{r}/issues/{n}/timeline?page=N&limit=PageSize): the entries of type "label", added when their body is
// "1" and removed otherwise (Gitea's convention), by their user. Gitea's timeline has no Link header and its
// X-Total-Count counts the page, not the timeline, and a page may hold fewer entries than asked (Gitea drops
// references the token may not see after paging, and lowers a limit above MAX_RESPONSE_ITEMS), so pages are read
// until an empty one; an entry seen twice means the timeline moved under the reader and is an error. When every
// page came with an ETag (a proxy in front; Gitea sends none), the next call revalidates each page and, when all
// are 304, answers the kept history. A label since deleted reads as Label "".
func (f *Forge) LabelEvents(ctx context.Context, number int) ([]forge.LabelEvent, error) {
	ctx = forge.WithOp(ctx, forge.OpLabelEvents)
	op := fmt.Sprintf("list label events of %d", number)
	if number <= 0 {
		return nil, &forge.Error{Forge: "gitea", Op: op, Err: fmt.Errorf("bad number %d", number)}
	}
	path := fmt.Sprintf("/repos/%s/%s/issues/%d/timeline", url.PathEscape(f.owner), url.PathEscape(f.repo), number)
	query := func(page int) url.Values {
		return url.Values{"page": {strconv.Itoa(page)}, "limit": {strconv.Itoa(f.opts.PageSize)}}
	}
	f.labelMu.Lock()
	prev, ok := f.labels[number]
	f.labelMu.Unlock()
	if ok {
		same := true
		for i, tag := range prev.tags {
			var entries []timelineEntry
			c, err := f.getJSON(ctx, op, path, query(i+1), tag, &entries)
			if err != nil {
				return nil, err
			}
			if c.status != http.StatusNotModified {
				same = false
				break
			}
		}
		if same {
			return slices.Clone(prev.events), nil
		}
	}
	out := []forge.LabelEvent{}
	var tags []string
	seen := map[int64]bool{}
	for page := 1; ; page++ {
		if page > maxPages {
			return nil, &forge.Error{Forge: "gitea", Op: op, Message: "more than " + strconv.Itoa(maxPages) + " pages"}
		}
		var entries []timelineEntry
		c, err := f.getJSON(ctx, op, path, query(page), "", &entries)
		if err != nil {
			return nil, err
		}
		// Gitea answers a page past the end with "null" (its handler encodes a nil slice), so a null is the empty
		// page that ends the timeline; anything else that is not a list fails to decode.
		tags = append(tags, c.header.Get("ETag"))
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			if seen[e.ID] {
				return nil, &forge.Error{Forge: "gitea", Op: op, Status: c.status, Temporary: true,
					Message: "the timeline changed while it was read (an entry seen twice)"}
			}
			seen[e.ID] = true
			if e.Type != "label" {
				continue
			}
			if e.Created.IsZero() {
				return nil, &forge.Error{Forge: "gitea", Op: op, Status: c.status, Temporary: true,
					Message: "a label event lacks its time"}
			}
			ev := forge.LabelEvent{Added: e.Body == "1", Created: e.Created.UTC()}
			if e.Label != nil {
				ev.Label = bound(e.Label.Name)
			}
			if e.User != nil {
				ev.Actor = bound(e.User.Login)
			}
			out = append(out, ev)
		}
	}
	slices.SortStableFunc(out, func(a, b forge.LabelEvent) int { return a.Created.Compare(b.Created) })
	f.labelMu.Lock()
	if slices.Contains(tags, "") {
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

// getJSON sends one GET of the API (path below /api/v1) without the SDK, through the same transport (recorder,
// Observer) and with the same errors, and decodes a whole JSON answer into v: another content type, a document
// cut short or trailing data is an error. With ifNoneMatch, a 304 is a success with no decoding (call.status 304).
func (f *Forge) getJSON(ctx context.Context, op, path string, q url.Values, ifNoneMatch string, v any) (*call, error) {
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	c := &call{ifNoneMatch: ifNoneMatch}
	u := f.opts.BaseURL + "/api/v1" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(context.WithValue(ctx, callKey{}, c), http.MethodGet, u, nil)
	if err != nil {
		return c, &forge.Error{Forge: "gitea", Op: op, Err: redact.Error(err)}
	}
	req.Header.Set("Authorization", "token "+f.opts.Token)
	req.Header.Set("User-Agent", "berth")
	req.Header.Set("Accept", "application/json")
	resp, err := f.hc.Do(req)
	if err != nil {
		return c, f.fail(op, c, nil, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified && ifNoneMatch != "" {
		return c, nil
	}
	if resp.StatusCode/100 != 2 {
		return c, f.fail(op, c, nil, fmt.Errorf("HTTP %d", resp.StatusCode))
	}
	// bad is a 2xx that is not the API's JSON: fail quotes the start of the body, or says what was wrong.
	bad := func(what string) error {
		err := f.fail(op, c, nil, errors.New(what))
		var fe *forge.Error
		if errors.As(err, &fe) && fe.Message == "" {
			fe.Message = "answer is not the API's JSON: " + what
		}
		return err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1024)) // for the quote
		return c, bad(fmt.Sprintf("content type %q", redact.Body([]byte(mt), 64)))
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxBody))
	if err := dec.Decode(v); err != nil {
		return c, bad("it does not parse")
	}
	if dec.More() {
		return c, bad("trailing data")
	}
	return c, nil
}

var _ forge.LabelHistory = (*Forge)(nil)
