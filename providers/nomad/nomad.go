package nomad

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
	"github.com/berth-dev/berth/schema/redact"
)

// Type is the target type served.
const Type = "nomad"

// Defaults of the provider's tunables.
const (
	DefaultPollInterval  = 2 * time.Second
	DefaultRetryBase     = 250 * time.Millisecond
	DefaultRetryMax      = 20 * time.Second
	DefaultRetryAttempts = 8
	// CallTimeout bounds each Nomad call (a blocking query adds its wait).
	CallTimeout = 30 * time.Second
)

func init() { providers.Register(Type, New) }

// Provider runs workloads as Nomad service jobs. Build it with New or NewWithClient. The exported tunables may be
// changed before the first call, never after.
type Provider struct {
	// PollInterval is the wait of the blocking queries (and the pause between polls) of Apply and Delete.
	PollInterval time.Duration
	// RetryBase, RetryMax and RetryAttempts shape the retries of a transient failure of one call: capped
	// exponential backoff with jitter, at most RetryAttempts tries.
	RetryBase, RetryMax time.Duration
	RetryAttempts       int

	client *api.Client
	target string
	set    settings
	log    *slog.Logger

	mu     sync.Mutex
	hashes map[versionKey]string // job version → spec hash (versions are immutable)
}

type versionKey struct {
	namespace, id string
	createIndex   uint64
	version       uint64
}

type settings struct {
	address, region, namespace, tokenEnv string
	datacenters                          []string
}

// New builds the provider for target t: a Nomad API client for settings.address, region and namespace, with the
// ACL token read from the environment variable settings.tokenEnv names. It is the registered factory.
func New(t schema.Target, opts providers.Options) (providers.Provider, error) {
	s, err := parseSettings(t)
	if err != nil {
		return nil, err
	}
	cfg := &api.Config{Address: s.address, Region: s.region, Namespace: s.namespace}
	if s.tokenEnv != "" {
		tok := os.Getenv(s.tokenEnv)
		if tok == "" {
			return nil, fmt.Errorf("%s: target %q: settings.tokenEnv: environment variable %s is unset or empty",
				t.Pos, t.Name, s.tokenEnv)
		}
		cfg.SecretID = tok
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: target %q: settings.address: %w", t.Pos, t.Name, err)
	}
	return newProvider(client, t, s, opts), nil
}

// NewWithClient builds the provider on an existing Nomad client (tests, callers with their own TLS or token
// handling). The address, region, namespace and token are then the client's; datacenters still applies.
func NewWithClient(client *api.Client, t schema.Target, opts providers.Options) (*Provider, error) {
	s, err := parseSettings(t)
	if err != nil {
		return nil, err
	}
	return newProvider(client, t, s, opts), nil
}

func newProvider(client *api.Client, t schema.Target, s settings, opts providers.Options) *Provider {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{
		PollInterval: DefaultPollInterval, RetryBase: DefaultRetryBase, RetryMax: DefaultRetryMax,
		RetryAttempts: DefaultRetryAttempts,
		client:        client, target: t.Name, set: s, hashes: map[versionKey]string{},
		log: log.With("provider", Type, "target", t.Name),
	}
}

// parseSettings checks the values of the #NomadTarget settings (the loader already checked the keys).
func parseSettings(t schema.Target) (settings, error) {
	var s settings
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
		case "address", "region", "namespace", "tokenEnv":
			str, ok := v.(string)
			if !ok || str == "" {
				return s, bad(k, fmt.Sprintf("want a non-empty string, got %T", v))
			}
			switch k {
			case "address":
				if !strings.HasPrefix(str, "http://") && !strings.HasPrefix(str, "https://") {
					return s, bad(k, "want an http:// or https:// URL")
				}
				s.address = str
			case "region":
				s.region = str
			case "namespace":
				s.namespace = str
			case "tokenEnv":
				s.tokenEnv = str
			}
		case "datacenters":
			list, ok := v.([]any)
			if sl, isStrings := v.([]string); isStrings {
				list, ok = make([]any, len(sl)), true
				for i, e := range sl {
					list[i] = e
				}
			}
			if !ok {
				return s, bad(k, fmt.Sprintf("want a list of strings, got %T", v))
			}
			for i, e := range list {
				str, ok := e.(string)
				if !ok || str == "" {
					return s, bad(k, fmt.Sprintf("element %d: want a non-empty string, got %T", i, e))
				}
				s.datacenters = append(s.datacenters, str)
			}
		case "type":
		default:
			return s, bad(k, "unknown setting")
		}
	}
	if s.address == "" {
		return s, bad("address", "required")
	}
	return s, nil
}

// Type is "nomad".
func (p *Provider) Type() string { return Type }

// Capabilities of a Nomad cluster with the docker driver: HTTP and TCP checks (Nomad's own service checks),
// static host ports, UDP, CPU (MHz) and memory; secrets from SOPS (through a Nomad variable berth writes), from
// Nomad variables and from Vault, as environment variables or as files under /secrets/ or /local/ (templates).
// Command checks are not honoured: they could only be Consul script checks, which need the Consul integration,
// and Validate says so on health.command. The offline description (offline.go) gives the same.
func (p *Provider) Capabilities() providers.Capabilities { return capabilities() }

func capabilities() providers.Capabilities {
	return providers.Capabilities{SharedHostPorts: true, HealthHTTP: true, HealthTCP: true, PublicPorts: true, UDP: true,
		CPULimit: true, MemoryLimit: true,
		SecretKinds: []string{schema.SecretSOPS, schema.SecretNomad, schema.SecretVault}, SecretFiles: true,
		How: map[string]string{
			providers.FeaturePublicPort: "static host port of the group network, on the node",
			providers.FeatureAddress:    "a running allocation's host network address : the static port",
			providers.FeatureHealthHTTP: "Nomad service check (http), Nomad's own service provider",
			providers.FeatureHealthTCP:  "Nomad service check (tcp), Nomad's own service provider",
			providers.FeatureCPU:        "task cpu in MHz (1m = 1 MHz)",
			providers.FeatureMemory:     "task memory in MB (at least 10)",
			providers.FeatureArgs:       "docker driver config.entrypoint (command) and config.args",
			providers.FeatureRollout:    "canaries = count with auto_promote: the new allocations healthy before the old stop; auto_revert on failure",
		}}
}

// Validate reports what a Nomad cluster may not honour as asked.
func (p *Provider) Validate(w schema.Workload) []providers.Problem { return validate(w) }

// validate is Validate: it needs no provider, so the offline description runs it too.
func validate(w schema.Workload) []providers.Problem {
	var out []providers.Problem
	if w.Health.Kind() == "command" {
		out = append(out, providers.Problem{Field: "health.command",
			Message: "Nomad runs command checks as Consul script checks: the cluster needs the Consul integration " +
				"(Nomad's own service provider has only http and tcp checks)"})
	}
	if m := w.Resources.MemoryBytes; m > 0 && memoryMB(m) < MinMemoryMB {
		out = append(out, providers.Problem{Field: "resources.memory",
			Message: fmt.Sprintf("Nomad's minimum task memory is %d MB; %d bytes is too little", MinMemoryMB, m)})
	}
	if h := w.Health; h != nil {
		if h.Interval.D() < minCheckInterval {
			out = append(out, providers.Problem{Field: "health.interval",
				Message: fmt.Sprintf("Nomad's shortest check interval is %s", minCheckInterval)})
		}
		if h.Timeout.D() < minCheckTimeout {
			out = append(out, providers.Problem{Field: "health.timeout",
				Message: fmt.Sprintf("Nomad's shortest check timeout is %s", minCheckTimeout)})
		}
	}
	labels := map[string]int{}
	for i, pt := range w.Ports {
		l := portLabel(pt)
		if j, dup := labels[l]; dup {
			out = append(out, providers.Problem{Field: fmt.Sprintf("ports[%d]", i),
				Message: fmt.Sprintf("ports[%d] and ports[%d] map to the same Nomad port label %q (Nomad ports carry "+
					"no protocol: name them apart or declare the port once)", j, i, l)})
		}
		labels[l] = i
	}
	out = append(out, secretProblems(w)...)
	seen := map[int]int{}
	for i, pt := range w.Ports {
		if !pt.Public {
			continue
		}
		hp := hostPort(pt)
		if j, dup := seen[hp]; dup {
			out = append(out, providers.Problem{Field: fmt.Sprintf("ports[%d].hostPort", i),
				Message: fmt.Sprintf("host port %d is already taken by ports[%d]", hp, j)})
		}
		seen[hp] = i
	}
	return out
}

// Close releases the client's idle connections.
func (p *Provider) Close() error {
	p.client.Close()
	return nil
}

// errClass is how a failed call is handled.
type errClass int

const (
	classRetryable errClass = iota // 5xx, 429, timeouts, transport failures
	classPermanent                 // invalid request, permission denied
	classNotFound                  // 404
	classConflict                  // EnforceIndex lost: re-read, then decide again
)

// errConflict marks a lost compare-and-set of a register.
var errConflict = errors.New("modified concurrently (a lost check-and-set)")

// enforcePrefix starts Nomad's answer to a register whose EnforceIndex does not match.
const enforcePrefix = "Enforcing job modify index"

// validationBody matches Nomad's answer to a job its validation refuses: HTTP 500 (the RPC error is not a coded
// one) with a go-multierror list as the plain body.
var validationBody = regexp.MustCompile(`^\d+ errors? occurred:`)

// variableRefusal matches the refusals of a variable write by the server's validation (plain RPC errors, answered
// as HTTP 500): an invalid or reserved path, too large items.
var variableRefusal = regexp.MustCompile(`invalid path|reserved (top-level )?directory|only paths at|limited to \d+KiB|can not target wildcard`)

func classify(err error) errClass {
	var cas api.ErrCASConflict
	if errors.As(err, &cas) {
		return classConflict // a variable's check-and-set lost: re-read
	}
	var ue api.UnexpectedResponseError
	if errors.As(err, &ue) && ue.HasStatusCode() {
		switch code := ue.StatusCode(); {
		case strings.Contains(ue.Body(), enforcePrefix):
			return classConflict
		case code >= 500 && validationBody.MatchString(strings.TrimSpace(ue.Body())):
			return classPermanent // a job Nomad's validation refused: 500, but no retry will pass
		case code == http.StatusInternalServerError && variableRefusal.MatchString(ue.Body()):
			return classPermanent // a variable Nomad's validation refused
		case code == http.StatusNotFound:
			return classNotFound
		case code == http.StatusConflict, code == http.StatusTooManyRequests, code == http.StatusRequestTimeout, code >= 500:
			return classRetryable
		case code >= 400:
			return classPermanent
		}
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return classRetryable
	}
	return classRetryable // transport failure (connection reset, EOF)
}

// errNotFound is what call returns (wrapped) for a 404.
var errNotFound = errors.New("not found")

// call runs one Nomad call with a timeout, retrying transient failures with capped exponential backoff and jitter
// within RetryAttempts. A 404 comes back wrapping errNotFound, a lost EnforceIndex wrapping errConflict, an
// invalid request as providers.Permanent.
func (p *Provider) call(ctx context.Context, op string, extra time.Duration, f func(ctx context.Context) error) error {
	r := providers.Retry{Base: p.RetryBase, Max: p.RetryMax, Attempts: p.RetryAttempts, Timeout: CallTimeout + extra,
		Classify: func(err error) providers.Class {
			switch classify(err) {
			case classRetryable:
				return providers.Transient
			case classPermanent:
				return providers.Invalid
			}
			return providers.Final
		}, Logger: p.log}
	err := r.Do(ctx, "nomad "+op, f)
	if err != nil && ctx.Err() == nil {
		switch classify(err) {
		case classNotFound:
			return fmt.Errorf("%w: %w", errNotFound, err)
		case classConflict:
			return fmt.Errorf("%w: %w", errConflict, err)
		case classPermanent:
			if e := p.explain(err); e != err {
				return providers.Permanent(e)
			}
		}
	}
	return err
}

// explain says how to fix a refused ACL token (401, 403), quoting Nomad's words (bounded, redacted); other errors
// come back as they are. The result keeps err's identity.
func (p *Provider) explain(err error) error {
	var ue api.UnexpectedResponseError
	if !errors.As(err, &ue) || !ue.HasStatusCode() || ue.StatusCode() != http.StatusForbidden && ue.StatusCode() != http.StatusUnauthorized {
		return err
	}
	ns := p.set.namespace
	if ns == "" {
		ns = "default"
	}
	fix := fmt.Sprintf("the target sends no ACL token: create one with a policy allowing submit-job, read-job and "+
		"list-jobs (and variables write on nomad/jobs/* for workloads with SOPS secrets) in namespace %q "+
		"(`nomad acl token create -policy NAME`) and name the environment variable that holds it in settings.tokenEnv", ns)
	if p.set.tokenEnv != "" {
		fix = fmt.Sprintf("the ACL token in %s (settings.tokenEnv) is unknown, expired, or its policies do not allow "+
			"submit-job, read-job and list-jobs (and variables write on nomad/jobs/* for workloads with SOPS "+
			"secrets) in namespace %q (`nomad acl token self` shows them); put a token that does in %s",
			p.set.tokenEnv, ns, p.set.tokenEnv)
	}
	return &explained{err: err, msg: fmt.Sprintf("nomad target %q: permission denied: %s. To fix: %s", p.target,
		strings.TrimRight(redact.Body([]byte(err.Error()), 400), "."), fix)}
}

// explained is an error with a message for people; it unwraps to the error it explains.
type explained struct {
	err error
	msg string
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

func (p *Provider) query(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{}).WithContext(ctx)
}

func (p *Provider) write(ctx context.Context) *api.WriteOptions {
	return (&api.WriteOptions{}).WithContext(ctx)
}

// info reads a job; nil when it does not exist.
func (p *Provider) info(ctx context.Context, id string) (*api.Job, error) {
	var job *api.Job
	err := p.call(ctx, "Jobs.Info", 0, func(ctx context.Context) error {
		var err error
		job, _, err = p.client.Jobs().Info(id, p.query(ctx))
		return err
	})
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	return job, err
}

var (
	_ providers.Provider   = (*Provider)(nil)
	_ providers.Validator  = (*Provider)(nil)
	_ providers.Normalizer = (*Provider)(nil)
	_ providers.Closer     = (*Provider)(nil)
)
