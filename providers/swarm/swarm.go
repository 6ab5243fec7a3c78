package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Type is the target type served.
const Type = "swarm"

// Defaults of the provider's tunables.
const (
	DefaultPollInterval  = time.Second
	DefaultRetryBase     = 200 * time.Millisecond
	DefaultRetryMax      = 10 * time.Second
	DefaultRetryAttempts = 8
	// DefaultUpdateMonitor is how long swarm watches each updated task for failure before it moves on.
	DefaultUpdateMonitor = 5 * time.Second
	// DefaultFailedTasks is how many failed or rejected tasks of the applied spec (and none ready) make Apply give
	// up instead of waiting for its context: a crashing image or one no node can pull.
	DefaultFailedTasks = 6
	// CallTimeout bounds each engine call.
	CallTimeout = 30 * time.Second
	// RestartDelay is the pause swarm makes before replacing a task that ended.
	RestartDelay = time.Second
	// StopGrace is how long a task has to exit after SIGTERM before it is killed.
	StopGrace = 10 * time.Second
)

func init() { providers.Register(Type, New) }

// Provider runs workloads as replicated services of one Docker swarm, through a manager's engine API. Build it with
// New or NewWithClient. The exported tunables may be changed before the first call, never after.
type Provider struct {
	// PollInterval paces the waits of Apply and Delete.
	PollInterval time.Duration
	// RetryBase, RetryMax and RetryAttempts shape the retries of a transient failure of one call: capped
	// exponential backoff with jitter, at most RetryAttempts tries.
	RetryBase, RetryMax time.Duration
	RetryAttempts       int
	// UpdateMonitor is the services' UpdateConfig.Monitor and RollbackConfig.Monitor.
	UpdateMonitor time.Duration
	// FailedTasks is how many failed tasks of the applied spec, with none ready, end Apply with an error.
	FailedTasks int

	cli        *client.Client
	ownsClient bool
	target     string
	log        *slog.Logger

	negMu      sync.Mutex
	negotiated bool
	netMu      sync.Mutex // serialises the creation and removal of environment networks
}

// New builds the provider for target t from its settings (host: the manager's engine, DOCKER_HOST syntax; the
// environment's default when absent). It is the registered factory.
func New(t schema.Target, opts providers.Options) (providers.Provider, error) {
	host, err := parseSettings(t)
	if err != nil {
		return nil, err
	}
	copts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host != "" {
		copts = append(copts, client.WithHost(host))
	}
	cli, err := client.NewClientWithOpts(copts...)
	if err != nil {
		return nil, fmt.Errorf("%s: target %q: docker client: %w", t.Pos, t.Name, err)
	}
	p := newProvider(cli, t, opts)
	p.ownsClient = true
	return p, nil
}

// NewWithClient builds the provider on an existing client, which Close leaves open. The host setting is ignored.
func NewWithClient(cli *client.Client, t schema.Target, opts providers.Options) (*Provider, error) {
	if _, err := parseSettings(t); err != nil {
		return nil, err
	}
	return newProvider(cli, t, opts), nil
}

func newProvider(cli *client.Client, t schema.Target, opts providers.Options) *Provider {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{
		PollInterval: DefaultPollInterval, RetryBase: DefaultRetryBase, RetryMax: DefaultRetryMax,
		RetryAttempts: DefaultRetryAttempts, UpdateMonitor: DefaultUpdateMonitor, FailedTasks: DefaultFailedTasks,
		cli: cli, target: t.Name, log: log.With("provider", Type, "target", t.Name),
	}
}

// parseSettings checks the #SwarmTarget settings and returns the host ("" for the environment's default).
func parseSettings(t schema.Target) (string, error) {
	keys := make([]string, 0, len(t.Settings))
	for k := range t.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var host string
	for _, k := range keys {
		v := t.Settings[k]
		switch k {
		case "host":
			s, ok := v.(string)
			if !ok || s == "" {
				return "", fmt.Errorf("%s: target %q: settings.host: want a non-empty string, got %T", t.Pos, t.Name, v)
			}
			if _, err := client.ParseHostURL(s); err != nil {
				return "", fmt.Errorf("%s: target %q: settings.host: %w", t.Pos, t.Name, err)
			}
			host = s
		case "type":
		default:
			return "", fmt.Errorf("%s: target %q: settings.%s: unknown setting (known: host)", t.Pos, t.Name, k)
		}
	}
	return host, nil
}

// Type is "swarm".
func (p *Provider) Type() string { return Type }

// Capabilities of a swarm: command health checks (run inside the container), public TCP and UDP ports through the
// ingress routing mesh, CPU and memory limits, SOPS secrets as swarm secret files and environment values.
func (p *Provider) Capabilities() providers.Capabilities {
	return providers.Capabilities{SharedHostPorts: true, HealthCommand: true, PublicPorts: true, UDP: true, CPULimit: true, MemoryLimit: true,
		SecretKinds: []string{schema.SecretSOPS}, SecretFiles: true}
}

// Validate reports what swarm cannot honour beyond Capabilities: HTTP and TCP health checks (swarm only runs a
// command inside the container, and scratch images have no curl) and two public ports on one published port.
func (p *Provider) Validate(w schema.Workload) []providers.Problem {
	var out []providers.Problem
	switch k := w.Health.Kind(); k {
	case "http", "tcp":
		out = append(out, providers.Problem{Field: "health." + k,
			Message: "swarm: health checks run a command inside the container (no native " + strings.ToUpper(k) +
				` probe); use health.command in exec form, e.g. ["/app", "healthcheck"]; without it a task counts as ` +
				"healthy once running"})
	}
	type pp struct {
		port  int
		proto string
	}
	seen := map[pp]int{}
	for i, port := range w.Ports {
		if !port.Public {
			continue
		}
		k := pp{publishedPort(port), port.Protocol}
		if j, dup := seen[k]; dup {
			out = append(out, providers.Problem{Field: fmt.Sprintf("ports[%d].hostPort", i),
				Message: fmt.Sprintf("swarm: published port %d/%s is already used by ports[%d]", k.port, k.proto, j)})
			continue
		}
		seen[k] = i
	}
	return out
}

// Close releases the client when New made it.
func (p *Provider) Close() error {
	if p.ownsClient {
		return p.cli.Close()
	}
	return nil
}

// negotiate settles the API version once, before any other call: the client reads the negotiated version without
// a lock in some calls, so concurrent first calls would race.
func (p *Provider) negotiate(ctx context.Context) error {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.negotiated {
		return nil
	}
	err := p.call(ctx, "ping", func(ctx context.Context) error {
		ping, err := p.cli.Ping(ctx)
		if err == nil {
			p.cli.NegotiateAPIVersionPing(ping)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("swarm manager of target %q: %w", p.target, err)
	}
	p.negotiated = true
	return nil
}

// classify sorts an engine error.
func classify(err error) providers.Class {
	switch {
	case err == nil:
		return providers.Final
	case cerrdefs.IsNotFound(err):
		return providers.Final
	case isSequenceConflict(err):
		return providers.Final // the caller re-reads the version
	case cerrdefs.IsInvalidArgument(err), cerrdefs.IsPermissionDenied(err), cerrdefs.IsUnauthorized(err),
		cerrdefs.IsNotImplemented(err), cerrdefs.IsFailedPrecondition(err):
		return providers.Invalid
	case cerrdefs.IsUnavailable(err), cerrdefs.IsInternal(err), cerrdefs.IsConflict(err),
		cerrdefs.IsDeadlineExceeded(err), cerrdefs.IsResourceExhausted(err), cerrdefs.IsUnknown(err),
		client.IsErrConnectionFailed(err), errors.Is(err, context.DeadlineExceeded):
		return providers.Transient
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return providers.Transient
	}
	return providers.Final
}

// isSequenceConflict tells a stale Version on ServiceUpdate: swarmkit answers "update out of sequence", which the
// engine passes on as a server error without a more specific kind.
func isSequenceConflict(err error) bool {
	return err != nil && strings.Contains(err.Error(), "out of sequence")
}

// call runs one call with a timeout, retrying transient failures with capped exponential backoff and jitter
// within RetryAttempts; invalid requests come back wrapped in providers.Permanent.
func (p *Provider) call(ctx context.Context, op string, f func(ctx context.Context) error) error {
	r := providers.Retry{Base: p.RetryBase, Max: p.RetryMax, Attempts: p.RetryAttempts, Timeout: CallTimeout,
		Classify: classify, Logger: p.log}
	return r.Do(ctx, op, f)
}

var (
	_ providers.Provider   = (*Provider)(nil)
	_ providers.Validator  = (*Provider)(nil)
	_ providers.Closer     = (*Provider)(nil)
	_ providers.Normalizer = (*Provider)(nil)

	_ providers.EnvironmentLister = (*Provider)(nil)
)
