package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/schema"
)

// Type is the router type of the edge in a `dns:` entry.
const Type = "edge"

func init() { endpoint.Register(Type, New) }

// Settings are the settings of an `edge` router entry.
type Settings struct {
	// Admin is the edge's admin address (see ParseAdmin): "unix:///run/user/1000/berth/edge.sock" or
	// "127.0.0.1:7071". Required.
	Admin string `json:"admin"`
}

// Client retries.
var clientRetry = providers.Retry{Base: 100 * time.Millisecond, Max: 2 * time.Second, Attempts: 12, Timeout: 30 * time.Second}

// maxAnswerBytes bounds what the client reads of an answer.
const maxAnswerBytes = 16 << 20

// Router is the endpoint.Router of an edge, over its admin API.
type Router struct {
	name  string // the `dns:` entry's name
	admin string
	base  string // "http://edge" for a unix socket, else "http://host:port"
	hc    *http.Client
	log   *slog.Logger
	retry providers.Retry
}

var (
	_ endpoint.Router  = (*Router)(nil)
	_ endpoint.Drainer = (*Router)(nil)
	_ endpoint.Lister  = (*Router)(nil)
)

// New is the Factory of the edge router type: settings {admin}.
func New(t schema.Target, opts endpoint.Options) (endpoint.Router, error) {
	var st Settings
	b, err := json.Marshal(t.Settings)
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		err = dec.Decode(&st)
	}
	if err != nil {
		return nil, providers.Permanent(fmt.Errorf("dns %q (edge): settings: %w", t.Name, err))
	}
	if st.Admin == "" {
		return nil, providers.Permanent(fmt.Errorf("dns %q (edge): settings: admin is required (the edge's admin address, e.g. unix:///run/berth/edge.sock)", t.Name))
	}
	r, err := NewRouter(st.Admin, opts.Logger)
	if err != nil {
		return nil, providers.Permanent(fmt.Errorf("dns %q (edge): %w", t.Name, err))
	}
	r.name = t.Name
	return r, nil
}

// NewRouter is the client of the edge whose admin API answers at admin.
func NewRouter(admin string, log *slog.Logger) (*Router, error) {
	network, address, err := ParseAdmin(admin)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := &http.Transport{Proxy: nil, MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second, ResponseHeaderTimeout: 30 * time.Second}
	base := "http://" + address
	if network == "unix" {
		base = "http://edge"
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", address)
		}
	}
	r := &Router{admin: admin, base: base, hc: &http.Client{Transport: tr}, log: log, retry: clientRetry}
	r.retry.Classify = classify
	r.retry.Logger = log
	return r, nil
}

// Type is "edge".
func (r *Router) Type() string { return Type }

// Capabilities: weighted, host:port members only, connections counted.
func (r *Router) Capabilities() endpoint.Capabilities {
	return endpoint.Capabilities{Weighted: true, HostNames: false, Connections: true}
}

// Get returns what name serves for owner; nil when the edge has no route of that name.
func (r *Router) Get(ctx context.Context, owner endpoint.Owner, name string) (*endpoint.Record, error) {
	rt, err := r.route(ctx, name)
	if err != nil || rt == nil {
		return nil, err
	}
	if rt.Owner != owner {
		return nil, fmt.Errorf("edge %s: %w: it is served for %s", name, endpoint.ErrNotOwned, rt.Owner)
	}
	return record(rt)
}

func record(rt *Route) (*endpoint.Record, error) {
	ttl, err := parseTTL(rt.TTL)
	if err != nil {
		return nil, fmt.Errorf("edge %s: %w", rt.Name, err)
	}
	rec := &endpoint.Record{Name: rt.Name, TTL: ttl, Members: make([]endpoint.Member, 0, len(rt.Members))}
	for _, m := range rt.Members {
		rec.Members = append(rec.Members, m.Member)
	}
	return rec, nil
}

// Status is the edge's full view of name (resolved addresses, ready flags, connections); nil when it has none.
func (r *Router) Status(ctx context.Context, name string) (*Route, error) { return r.route(ctx, name) }

func (r *Router) route(ctx context.Context, name string) (*Route, error) {
	var rt Route
	found := true
	err := r.retry.Do(ctx, "edge get "+name, func(ctx context.Context) error {
		err := r.call(ctx, http.MethodGet, routePath(name), nil, &rt)
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			found = false
			return nil
		}
		return err
	})
	if err != nil || !found {
		return nil, err
	}
	return &rt, nil
}

// Set makes name serve members for owner and returns once the edge applied and persisted its table.
func (r *Router) Set(ctx context.Context, owner endpoint.Owner, name string, ttl time.Duration, members []endpoint.Member) error {
	if err := checkEdgeMembers(members); err != nil {
		return fmt.Errorf("edge %s: %w", name, err)
	}
	body := PutRequest{Owner: owner, TTL: formatTTL(ttl), Members: members}
	err := r.retry.Do(ctx, "edge set "+name, func(ctx context.Context) error {
		return r.call(ctx, http.MethodPut, routePath(name), body, nil)
	})
	if err != nil {
		return err
	}
	r.log.DebugContext(ctx, "edge route set", "name", name, "members", memberSummary(members))
	return nil
}

// Delete removes owner's route name; a name the edge does not serve is not an error.
func (r *Router) Delete(ctx context.Context, owner endpoint.Owner, name string) error {
	q := url.Values{"instance": {owner.Instance}, "environment": {owner.Environment}, "workload": {owner.Workload}}
	return r.retry.Do(ctx, "edge delete "+name, func(ctx context.Context) error {
		return r.call(ctx, http.MethodDelete, routePath(name)+"?"+q.Encode(), nil, nil)
	})
}

// Connections are the connections open to each member of name, by target.
func (r *Router) Connections(ctx context.Context, owner endpoint.Owner, name string) (map[string]int, error) {
	rt, err := r.route(ctx, name)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	if rt == nil {
		return out, nil
	}
	if rt.Owner != owner {
		return nil, fmt.Errorf("edge %s: %w: it is served for %s", name, endpoint.ErrNotOwned, rt.Owner)
	}
	for _, m := range rt.Members {
		out[m.Target] = m.Connections
	}
	return out, nil
}

// Names are the routes of instance on the edge, with their owners.
func (r *Router) Names(ctx context.Context, instance string) (map[string]endpoint.Owner, error) {
	var l List
	err := r.retry.Do(ctx, "edge list", func(ctx context.Context) error {
		return r.call(ctx, http.MethodGet, RoutesPath+"?"+url.Values{"instance": {instance}}.Encode(), nil, &l)
	})
	if err != nil {
		return nil, err
	}
	out := map[string]endpoint.Owner{}
	for _, rt := range l.Routes {
		if rt.Owner.Instance == instance {
			out[rt.Name] = rt.Owner
		}
	}
	return out, nil
}

func routePath(name string) string { return RoutesPath + "/" + url.PathEscape(name) }

// APIError is an error answer of the admin API. It unwraps to endpoint.ErrNotOwned or endpoint.ErrBadMember when
// its code says so.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("edge answered %d %s: %s", e.Status, e.Code, e.Message)
}

func (e *APIError) Unwrap() error {
	switch e.Code {
	case CodeNotOwned:
		return endpoint.ErrNotOwned
	case CodeBadMember:
		return endpoint.ErrBadMember
	}
	return nil
}

// call makes one request of the admin API and decodes a 2xx answer into out.
func (r *Router) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{Status: resp.StatusCode}
		var eb ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Code != "" {
			ae.Code, ae.Message = eb.Code, eb.Error
		} else {
			ae.Message = http.StatusText(resp.StatusCode)
		}
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("edge answer: %w", err)
		}
	}
	return nil
}

// classify sorts the client's errors: 400 is invalid, the other 4xx final (not owned, address in use), 5xx and
// the edge not answering (restarting: connection refused, no socket yet) transient.
func classify(err error) providers.Class {
	var ae *APIError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusBadRequest:
			return providers.Invalid
		case ae.Code == CodeListen:
			return providers.Final
		case ae.Status >= 500 || ae.Status == http.StatusTooManyRequests:
			return providers.Transient
		}
		return providers.Final
	}
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &oe):
		return providers.Transient
	case errors.As(err, &ne) && ne.Timeout():
		return providers.Transient
	}
	return providers.Final
}
