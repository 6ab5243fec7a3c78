package clouddns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/auth"
	dnsv1 "google.golang.org/api/dns/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/schema"
)

// Type is the router type served.
const Type = "clouddns"

func init() { endpoint.Register(Type, New) }

// Defaults of the Router's tuning fields.
const (
	DefaultPollInterval  = time.Second
	DefaultPollMax       = 10 * time.Second
	DefaultRetryBase     = 500 * time.Millisecond
	DefaultRetryMax      = 20 * time.Second
	DefaultRetryAttempts = 6
	DefaultCallTimeout   = 30 * time.Second
	// conflictAttempts bounds the read-change rounds of a Set or Delete that lose a race with another writer
	// (409, 412, 404 on a deletion).
	conflictAttempts = 4
)

// Settings are a clouddns entry's settings, decoded once.
type Settings struct {
	// Project is the Google Cloud project of the managed zone (required).
	Project string `json:"project"`
	// Zone is the managed zone's name, not its DNS name (required).
	Zone string `json:"zone"`
	// CredentialsFile is a service-account key (or another JSON credentials file); application default
	// credentials when empty.
	CredentialsFile string `json:"credentialsFile,omitempty"`
	// Endpoint is the Cloud DNS API base URL (tests: an emulator); default https://dns.googleapis.com/.
	Endpoint string `json:"endpoint,omitempty"`
}

var settingKeys = []string{"credentialsFile", "endpoint", "project", "zone"}

// ParseSettings decodes an entry's settings: every key known, project and zone set.
func ParseSettings(t schema.Target) (Settings, error) {
	keys := make([]string, 0, len(t.Settings))
	for k := range t.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(settingKeys, k) {
			return Settings{}, providers.Permanent(fmt.Errorf("dns %q (%s): unknown setting %q (known: %s)", t.Name, t.Pos, k,
				strings.Join(settingKeys, ", ")))
		}
	}
	var s Settings
	b, err := json.Marshal(t.Settings)
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil {
		return Settings{}, providers.Permanent(fmt.Errorf("dns %q (%s): settings: %w", t.Name, t.Pos, err))
	}
	for _, f := range []struct{ key, v string }{{"project", s.Project}, {"zone", s.Zone}} {
		if strings.TrimSpace(f.v) == "" {
			return Settings{}, providers.Permanent(fmt.Errorf("dns %q (%s): setting %q is required", t.Name, t.Pos, f.key))
		}
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Settings{}, providers.Permanent(fmt.Errorf("dns %q (%s): setting \"endpoint\" %q is not an http(s) URL", t.Name, t.Pos, s.Endpoint))
		}
		if !strings.HasSuffix(s.Endpoint, "/") {
			s.Endpoint += "/" // the SDK resolves "dns/v1/..." against it
		}
	}
	return s, nil
}

// Router serves stable names in one Cloud DNS managed zone (see the package doc for the record layout). The
// tuning fields may be changed before the first call only.
type Router struct {
	// PollInterval is the first wait between polls of a pending change, doubled up to PollMax, ±10% jitter.
	PollInterval, PollMax time.Duration
	// RetryBase, RetryMax and RetryAttempts bound the retries of one API call that fails transiently.
	RetryBase, RetryMax time.Duration
	RetryAttempts       int
	// CallTimeout bounds one API call.
	CallTimeout time.Duration

	name     string
	settings Settings
	svc      *dnsv1.Service
	log      *slog.Logger

	mu sync.Mutex
	// dnsName is the zone's DNS name, with its dot, read once (managedZones.get) at first use.
	dnsName string
}

var (
	_ endpoint.Router = (*Router)(nil)
	_ endpoint.Lister = (*Router)(nil)
)

// New builds the router of a `dns:` entry of type clouddns.
func New(t schema.Target, opts endpoint.Options) (endpoint.Router, error) {
	return NewRouter(t, opts)
}

// NewRouter is New with the concrete type, and extra SDK client options (tests).
func NewRouter(t schema.Target, opts endpoint.Options, extra ...option.ClientOption) (*Router, error) {
	s, err := ParseSettings(t)
	if err != nil {
		return nil, err
	}
	var copts []option.ClientOption
	if s.Endpoint != "" {
		copts = append(copts, option.WithEndpoint(s.Endpoint))
	}
	if s.CredentialsFile != "" {
		typ, err := credentialsType(s.CredentialsFile)
		if err != nil {
			return nil, providers.Permanent(fmt.Errorf("dns %q: settings.credentialsFile: %w. To fix: point it at a "+
				"readable service account key (or another Google JSON credentials file)", t.Name, err))
		}
		copts = append(copts, option.WithAuthCredentialsFile(typ, s.CredentialsFile))
	}
	copts = append(copts, extra...)
	// Client construction does no API call; without a credentialsFile it finds application default credentials.
	svc, err := dnsv1.NewService(context.Background(), copts...)
	if err != nil && s.CredentialsFile == "" {
		return nil, providers.Permanent(fmt.Errorf("dns %q: Cloud DNS client: %w. To fix: set the entry's "+
			"credentialsFile to a service account key, or export GOOGLE_APPLICATION_CREDENTIALS=/path/to/key.json, or "+
			"run `gcloud auth application-default login`, or run berth on Google Cloud with a service account "+
			"attached (it needs roles/dns.admin on project %s)", t.Name, err, s.Project))
	}
	if err != nil {
		return nil, providers.Permanent(fmt.Errorf("dns %q: Cloud DNS client: %w", t.Name, err))
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{
		PollInterval: DefaultPollInterval, PollMax: DefaultPollMax, RetryBase: DefaultRetryBase, RetryMax: DefaultRetryMax,
		RetryAttempts: DefaultRetryAttempts, CallTimeout: DefaultCallTimeout,
		name: t.Name, settings: s, svc: svc, log: log.With("router", Type, "dns", t.Name),
	}, nil
}

func credentialsType(path string) (option.CredentialsType, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var f struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return "", fmt.Errorf("%s: not a JSON credentials file", path) // the parse error may quote the key
	}
	switch t := option.CredentialsType(f.Type); t {
	case option.ServiceAccount, option.AuthorizedUser, option.ExternalAccount, option.ImpersonatedServiceAccount:
		return t, nil
	}
	return "", fmt.Errorf("%s: unsupported credentials type %q", path, f.Type)
}

// Type implements endpoint.Router.
func (r *Router) Type() string { return Type }

// Capabilities implements endpoint.Router: weighted round robin, host names (as a per-member CNAME).
func (r *Router) Capabilities() endpoint.Capabilities {
	return endpoint.Capabilities{Weighted: true, HostNames: true}
}

func (r *Router) retry() providers.Retry {
	return providers.Retry{Base: r.RetryBase, Max: r.RetryMax, Attempts: r.RetryAttempts, Timeout: r.CallTimeout,
		Classify: classify, Logger: r.log}
}

// errConflict is a change that lost a race with another writer of the zone: read again and retry.
var errConflict = errors.New("the record sets changed meanwhile")

// classify sorts Cloud DNS errors: throttling, 5xx and dropped connections are retried; 409 and 412 (a change that
// lost a race) are Final, for the caller to read again; other 4xx are Invalid.
func classify(err error) providers.Class {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch {
		case ge.Code == 429 || ge.Code >= 500:
			return providers.Transient
		case ge.Code == 403 && (hasReason(ge, "rateLimitExceeded") || hasReason(ge, "userRateLimitExceeded")):
			return providers.Transient
		case ge.Code == 409 || ge.Code == 412:
			return providers.Final
		}
		return providers.Invalid
	}
	var ae *auth.Error
	if errors.As(err, &ae) {
		if ae.Response != nil && (ae.Response.StatusCode == 429 || ae.Response.StatusCode >= 500) {
			return providers.Transient
		}
		return providers.Invalid
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return providers.Transient // one call's timeout; ctx's own end is seen by Retry
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) {
		return providers.Transient
	}
	return providers.Final
}

// classifyChange is classify for changes.create, whose 404 (a deletion of a set that is gone: the zone was read
// moments before) and 400 cnameResourceRecordSetConflict (a set berth did not read beside its CNAME) are lost
// races too.
func classifyChange(err error) providers.Class {
	if conflict(err) {
		return providers.Final
	}
	return classify(err)
}

// conflict tells whether a changes.create failed because the zone changed since it was read.
func conflict(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && (ge.Code == 409 || ge.Code == 412 || ge.Code == 404 ||
		ge.Code == 400 && hasReason(ge, "cnameResourceRecordSetConflict"))
}

// fail wraps the error of an operation on name, adding how to fix a denied permission or a disabled API. It
// keeps err's identity.
func (r *Router) fail(op, name string, err error) error {
	if name != "" {
		op += " " + name
	}
	err = fmt.Errorf("dns %q: %s: %w", r.name, op, err)
	var ge *googleapi.Error
	if !errors.As(err, &ge) || classify(ge) == providers.Transient {
		return err
	}
	switch {
	case ge.Code == 403 && (hasReason(ge, "accessNotConfigured") || hasReason(ge, "SERVICE_DISABLED")):
		return &explained{err: err, fix: "enable the Cloud DNS API: `gcloud services enable dns.googleapis.com --project " +
			r.settings.Project + "`"}
	case ge.Code == 403:
		return &explained{err: err, fix: "grant the identity berth runs as roles/dns.admin on project " + r.settings.Project +
			" (it uses dns.managedZones.get, dns.resourceRecordSets.list, dns.changes.create, dns.changes.get, " +
			"dns.changes.list)"}
	}
	return err
}

// explained is an error with how to fix it; it unwraps to the error it explains.
type explained struct {
	err error
	fix string
}

func (e *explained) Error() string { return e.err.Error() + ". To fix: " + e.fix }
func (e *explained) Unwrap() error { return e.err }

func hasReason(ge *googleapi.Error, reason string) bool {
	for _, e := range ge.Errors {
		if e.Reason == reason {
			return true
		}
	}
	return false
}

// zoneName returns the zone's DNS name, read at first use (calls that start together may each read it).
func (r *Router) zoneName(ctx context.Context) (string, error) {
	r.mu.Lock()
	name := r.dnsName
	r.mu.Unlock()
	if name != "" {
		return name, nil
	}
	var z *dnsv1.ManagedZone
	err := r.retry().Do(ctx, "managedZones.get "+r.settings.Project+"/"+r.settings.Zone,
		func(ctx context.Context) error {
			var err error
			z, err = r.svc.ManagedZones.Get(r.settings.Project, r.settings.Zone).Context(ctx).Do()
			return err
		})
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Code == 404 {
		return "", &explained{err: err, fix: fmt.Sprintf("check the entry's project (%s) and zone (%s): zone is the "+
			"managed zone's name (`gcloud dns managed-zones list --project %s`), not its DNS name",
			r.settings.Project, r.settings.Zone, r.settings.Project)}
	}
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dnsName = endpoint.Fqdn(z.DnsName)
	return r.dnsName, nil
}

// list returns the record sets of name (every type when typ is ""), every page.
func (r *Router) list(ctx context.Context, name, typ string) ([]*dnsv1.ResourceRecordSet, error) {
	var out []*dnsv1.ResourceRecordSet
	token := ""
	for {
		var page *dnsv1.ResourceRecordSetsListResponse
		op := "resourceRecordSets.list"
		if name != "" {
			op += " " + name
		}
		err := r.retry().Do(ctx, op, func(ctx context.Context) error {
			call := r.svc.ResourceRecordSets.List(r.settings.Project, r.settings.Zone).Context(ctx)
			if name != "" {
				call = call.Name(name)
			}
			if typ != "" {
				call = call.Type(typ)
			}
			if token != "" {
				call = call.PageToken(token)
			}
			var err error
			page, err = call.Do()
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, page.Rrsets...)
		if page.NextPageToken == "" || page.NextPageToken == token {
			return out, nil
		}
		token = page.NextPageToken
	}
}

// change makes c and waits until it is done. A lost race comes back wrapping errConflict.
func (r *Router) change(ctx context.Context, name string, c *dnsv1.Change) error {
	var got *dnsv1.Change
	retry := r.retry()
	retry.Classify = classifyChange
	err := retry.Do(ctx, "changes.create", func(ctx context.Context) error {
		var err error
		got, err = r.svc.Changes.Create(r.settings.Project, r.settings.Zone, c).Context(ctx).Do()
		return err
	})
	if err != nil {
		if conflict(err) {
			return fmt.Errorf("%w: %w", errConflict, err)
		}
		return err
	}
	return r.await(ctx, got)
}

// await polls changes.get until the change is done, with backoff (PollInterval doubled up to PollMax, ±10%
// jitter), bounded by ctx.
func (r *Router) await(ctx context.Context, c *dnsv1.Change) error {
	wait := r.PollInterval
	for c.Status != "done" {
		if err := providers.Sleep(ctx, wait-wait/10+jitter(wait/5+1)); err != nil {
			return fmt.Errorf("waiting for change %s to be done: %w", c.Id, err)
		}
		wait = min(2*wait, r.PollMax)
		id := c.Id
		err := r.retry().Do(ctx, "changes.get "+id, func(ctx context.Context) error {
			var err error
			c, err = r.svc.Changes.Get(r.settings.Project, r.settings.Zone, id).Context(ctx).Do()
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}
