package marathon

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Type is the target type served.
const Type = "marathon"

// Defaults of the settings and of the provider's tunables.
const (
	DefaultGroup         = "/berth"
	DefaultPollInterval  = 2 * time.Second
	DefaultRetryBase     = 250 * time.Millisecond
	DefaultRetryMax      = 10 * time.Second
	DefaultRetryAttempts = 8
	// DefaultApplyTimeout bounds one Apply's or Delete's wait for Marathon to converge.
	DefaultApplyTimeout = 10 * time.Minute
	// CallTimeout bounds each HTTP call.
	CallTimeout = 30 * time.Second
)

func init() { providers.Register(Type, New) }

// Provider runs each workload as one Marathon app. Build it with New or NewWithHTTPClient. The exported tunables
// may be changed before the first call, never after.
type Provider struct {
	// PollInterval paces the waits of Apply and Delete (deployments, readiness).
	PollInterval time.Duration
	// RetryBase, RetryMax and RetryAttempts shape the retries of a transient failure of one call: capped
	// exponential backoff with jitter, at most RetryAttempts tries.
	RetryBase, RetryMax time.Duration
	RetryAttempts       int
	// ApplyTimeout bounds the wait of one Apply or Delete; past it the call fails (transient) with what it saw.
	ApplyTimeout time.Duration

	hc     *http.Client
	target string
	set    settings
	log    *slog.Logger
}

type settings struct {
	address  *url.URL
	group    string // "/berth", no trailing slash
	force    bool
	tokenEnv string
}

// New builds the provider for target t with a default HTTP client. It is the registered factory.
func New(t schema.Target, opts providers.Options) (providers.Provider, error) {
	return NewWithHTTPClient(t, &http.Client{}, opts)
}

// NewWithHTTPClient builds the provider on hc (tests, callers with their own transport or TLS roots).
func NewWithHTTPClient(t schema.Target, hc *http.Client, opts providers.Options) (*Provider, error) {
	s, err := parseSettings(t)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{
		PollInterval: DefaultPollInterval, RetryBase: DefaultRetryBase, RetryMax: DefaultRetryMax,
		RetryAttempts: DefaultRetryAttempts, ApplyTimeout: DefaultApplyTimeout,
		hc: hc, target: t.Name, set: s, log: log.With("provider", Type, "target", t.Name),
	}, nil
}

// segment is one path segment of a Marathon id.
var segment = regexp.MustCompile(`^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$`)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseSettings checks the values of the #MarathonTarget settings (the loader already checked the keys).
func parseSettings(t schema.Target) (settings, error) {
	s := settings{group: DefaultGroup}
	bad := func(k, why string) error {
		return fmt.Errorf("%s: target %q: settings.%s: %s", t.Pos, t.Name, k, why)
	}
	keys := make([]string, 0, len(t.Settings))
	for k := range t.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := t.Settings[k]
		switch k {
		case "address", "group", "tokenEnv":
			str, ok := v.(string)
			if !ok || str == "" {
				return s, bad(k, fmt.Sprintf("want a non-empty string, got %T", v))
			}
			switch k {
			case "address":
				u, err := url.Parse(str)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return s, bad(k, "want an http:// or https:// URL")
				}
				u.Path = strings.TrimRight(u.Path, "/")
				s.address = u
			case "group":
				g := "/" + strings.Trim(str, "/")
				if !strings.HasPrefix(str, "/") {
					return s, bad(k, `want an absolute Marathon group id, e.g. "/berth"`)
				}
				for _, seg := range strings.Split(strings.Trim(g, "/"), "/") {
					if !segment.MatchString(seg) {
						return s, bad(k, fmt.Sprintf("segment %q: Marathon ids are lowercase letters, digits, '-' and '.'", seg))
					}
				}
				s.group = g
			case "tokenEnv":
				if !envName.MatchString(str) {
					return s, bad(k, "want an environment variable name")
				}
				s.tokenEnv = str
			}
		case "force":
			b, ok := v.(bool)
			if !ok {
				return s, bad(k, fmt.Sprintf("want a bool, got %T", v))
			}
			s.force = b
		case "type":
		default:
			return s, bad(k, "unknown setting")
		}
	}
	if s.address == nil {
		return s, bad("address", "required")
	}
	return s, nil
}

// Type is "marathon".
func (p *Provider) Type() string { return Type }

// Capabilities of Marathon with the Docker containerizer on bridge networking: every health check kind, host ports
// for public ports, UDP, CPU shares and memory limits; SOPS secrets as environment values only (Marathon's own
// secrets and secret volumes need the secret store of DC/OS Enterprise, which berth does not use). The offline
// description (offline.go) gives the same.
func (p *Provider) Capabilities() providers.Capabilities { return capabilities() }

func capabilities() providers.Capabilities {
	return providers.Capabilities{SharedHostPorts: true, HealthHTTP: true, HealthTCP: true, HealthCommand: true, PublicPorts: true,
		UDP: true, CPULimit: true, MemoryLimit: true, SecretKinds: []string{schema.SecretSOPS},
		How: map[string]string{
			providers.FeaturePublicPort:    "host port of a BRIDGE port mapping, on the agent",
			providers.FeatureAddress:       "a running task's agent host : the mapped host port",
			providers.FeatureHealthHTTP:    "Marathon health check (HTTP, by portIndex)",
			providers.FeatureHealthTCP:     "Marathon health check (TCP, by portIndex)",
			providers.FeatureHealthCommand: "Marathon COMMAND health check, through /bin/sh -c (the image needs a shell)",
			providers.FeatureCPU:           "app cpus (CPU shares: millis / 1000)",
			providers.FeatureMemory:        "app mem in MiB",
			providers.FeatureArgs:          "app args; a command as docker's entrypoint parameter",
			providers.FeatureRollout:       "upgradeStrategy minimumHealthCapacity 1, maximumOverCapacity 1: new tasks healthy before the old are killed",
		}}
}

// Validate reports what Marathon cannot honour: a health check on a port the workload does not declare (Marathon
// checks a mapped port by its index). Limits that depend on the cluster (a COMMAND check needs a shell in the
// image, a fixed host port needs one agent per replica) are documented, not reported.
func (p *Provider) Validate(w schema.Workload) []providers.Problem { return validate(w) }

// validate is Validate: it needs no provider, so the offline description runs it too.
func validate(w schema.Workload) []providers.Problem {
	if port := healthPort(w.Health); port != 0 && portIndex(w, port) < 0 {
		return []providers.Problem{{Field: "health." + w.Health.Kind() + ".port",
			Message: fmt.Sprintf("Marathon checks a declared port by its index; port %d is not in ports", port)}}
	}
	return nil
}

// Close releases idle connections.
func (p *Provider) Close() error {
	p.hc.CloseIdleConnections()
	return nil
}

var _ providers.Provider = (*Provider)(nil)
var _ providers.Validator = (*Provider)(nil)
var _ providers.Closer = (*Provider)(nil)
