package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
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
	// SyncInterval is the period of the background sync of PublishHost's proxies (±10% jitter).
	SyncInterval = time.Second
)

func init() {
	providers.Register(Type, New)
	providers.RegisterOffline(Type, Offline)
}

// Offline is what a swarm target honours, from its settings alone (no manager is reached): the Capabilities and
// the Validate of a Provider built for it. Without settings.publish, a Provider detects the publishing mode when
// built (detectPublish); Offline cannot, so its Validate gives the routing mesh's answer and plan time checks what
// host-mode publishing adds (a public UDP port). It is the registered providers.Offline.
func Offline(t schema.Target) (providers.Capabilities, providers.Validator, error) {
	s, err := parseSettings(t)
	if err != nil {
		return providers.Capabilities{}, nil, err
	}
	return capabilities(s), validator{publish: s.publish}, nil
}

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
	// Publish is how public ports are published, PublishIngress or PublishHost: settings.publish, else detected
	// (detectPublish: host mode when the engine is on this machine and its kernel has no IPVS for the routing mesh).
	Publish string
	// PublicAddress is where the proxies of PublishHost listen: settings.publicAddress, else DefaultPublicAddress.
	PublicAddress string

	cli        *client.Client
	ownsClient bool
	target     string
	settings   settings
	engine     string // the manager as Endpoint.Watch names it: settings.host ("" for the default), or the client's
	log        *slog.Logger

	instance   string // the background sync serves only this instance's services (all when empty)
	background bool

	negMu      sync.Mutex
	negotiated bool
	netMu      sync.Mutex // serialises the creation and removal of environment networks

	watches providers.Watches // one pointer per distinct Watch

	pxMu     sync.Mutex
	proxies  map[int]*served // by host port: PublishHost's public ports
	inflight map[wkey]int    // workloads with an Apply or Delete in flight
	closed   bool
	stop     context.CancelFunc // of the background sync
	synced   chan struct{}      // closed when the background sync ended
}

// New builds the provider for target t from its settings (host: the manager's engine, DOCKER_HOST syntax; the
// environment's default when absent; publish and publicAddress, see Provider). It is the registered factory.
func New(t schema.Target, opts providers.Options) (providers.Provider, error) {
	s, err := parseSettings(t)
	if err != nil {
		return nil, err
	}
	copts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if s.host != "" {
		copts = append(copts, client.WithHost(s.host))
	}
	cli, err := client.NewClientWithOpts(copts...)
	if err != nil {
		return nil, fmt.Errorf("%s: target %q: docker client: %w", t.Pos, t.Name, err)
	}
	p := newProvider(cli, t, s, opts)
	p.ownsClient = true
	p.engine = s.host
	return p, nil
}

// NewWithClient builds the provider on an existing client, which Close leaves open. The host setting is ignored:
// the manager is the client's, and Endpoint.Watch names it by the client's address (DaemonHost).
func NewWithClient(cli *client.Client, t schema.Target, opts providers.Options) (*Provider, error) {
	s, err := parseSettings(t)
	if err != nil {
		return nil, err
	}
	p := newProvider(cli, t, s, opts)
	p.engine = cli.DaemonHost()
	return p, nil
}

func newProvider(cli *client.Client, t schema.Target, s settings, opts providers.Options) *Provider {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	publish := s.publish
	if publish == "" {
		publish = detectPublish(cli.DaemonHost(), osRoot)
	}
	publicAddress := s.publicAddress
	if publicAddress == "" {
		publicAddress = DefaultPublicAddress
	}
	return &Provider{
		PollInterval: DefaultPollInterval, RetryBase: DefaultRetryBase, RetryMax: DefaultRetryMax,
		RetryAttempts: DefaultRetryAttempts, UpdateMonitor: DefaultUpdateMonitor, FailedTasks: DefaultFailedTasks,
		Publish: publish, PublicAddress: publicAddress,
		cli: cli, target: t.Name, settings: s, log: log.With("provider", Type, "target", t.Name),
		instance: opts.Instance, background: opts.Background,
		proxies: map[int]*served{}, inflight: map[wkey]int{},
	}
}

// settings are a #SwarmTarget's settings, decoded once.
type settings struct {
	host          string // "" for the environment's default
	publish       string // "" to detect
	publicAddress string // "" for DefaultPublicAddress
}

// parseSettings checks and decodes the #SwarmTarget settings.
func parseSettings(t schema.Target) (settings, error) {
	var s settings
	for _, k := range slices.Sorted(maps.Keys(t.Settings)) {
		v := t.Settings[k]
		switch k {
		case "type":
			continue
		case "host", "publish", "publicAddress":
		default:
			return settings{}, fmt.Errorf("%s: target %q: settings.%s: unknown setting (known: host, publicAddress, publish)",
				t.Pos, t.Name, k)
		}
		str, ok := v.(string)
		if !ok || str == "" {
			return settings{}, fmt.Errorf("%s: target %q: settings.%s: want a non-empty string, got %T", t.Pos, t.Name, k, v)
		}
		switch k {
		case "host":
			if _, err := client.ParseHostURL(str); err != nil {
				return settings{}, fmt.Errorf("%s: target %q: settings.host: %w", t.Pos, t.Name, err)
			}
			s.host = str
		case "publish":
			if str != PublishIngress && str != PublishHost {
				return settings{}, fmt.Errorf("%s: target %q: settings.publish: %q: want %q or %q", t.Pos, t.Name, str,
					PublishIngress, PublishHost)
			}
			s.publish = str
		case "publicAddress":
			if net.ParseIP(str) == nil {
				return settings{}, fmt.Errorf("%s: target %q: settings.publicAddress: %q is not an IP address", t.Pos, t.Name, str)
			}
			s.publicAddress = str
		}
	}
	return s, nil
}

// Type is "swarm".
func (p *Provider) Type() string { return Type }

// Capabilities of a swarm: command health checks (run inside the container), HTTP and TCP health checks (probed by
// berth on each task's node), public TCP ports (and UDP ones through the ingress routing mesh, not in host mode:
// see Validate), CPU and memory limits, SOPS secrets as swarm secret files and environment values, images pulled
// by the nodes with Desired.ImageAuth. They depend on the settings only (see Offline).
func (p *Provider) Capabilities() providers.Capabilities { return capabilities(p.settings) }

// capabilities are a swarm target's with settings s. How says where public ports are published: through the
// routing mesh, or in host mode behind berth's proxies, as settings.publish says, else chosen when the provider is
// built.
func capabilities(s settings) providers.Capabilities {
	public, address := "the routing mesh (ingress) at the published port on every node",
		"the manager's host and the published port"
	switch s.publish {
	case PublishHost:
		public, address = "host-mode publishing behind berth's TCP proxy on the public port",
			"publicAddress:hostPort of berth's proxy (a wildcard reads as 127.0.0.1)"
	case "":
		public = "the routing mesh where the nodes have IPVS, else host-mode publishing behind berth's TCP proxy " +
			"(chosen automatically)"
		address = "the manager's host and the published port (routing mesh), or publicAddress:hostPort of berth's proxy"
	}
	return providers.Capabilities{SharedHostPorts: true, HealthHTTP: true, HealthTCP: true, HealthCommand: true,
		PublicPorts: true, UDP: true, CPULimit: true, MemoryLimit: true,
		SecretKinds: []string{schema.SecretSOPS}, SecretFiles: true, PullsImages: true,
		How: map[string]string{
			providers.FeaturePublicPort:    public,
			providers.FeatureAddress:       address,
			providers.FeatureHealthHTTP:    "berth probes each task at the checked port, published in host mode on its node",
			providers.FeatureHealthTCP:     "berth connects to each task at the checked port, published in host mode on its node",
			providers.FeatureHealthCommand: "the service's exec-form Healthcheck, run by the engine in each task",
			providers.FeatureCPU:           "the task template's resource limit (NanoCPUs)",
			providers.FeatureMemory:        "the task template's resource limit (MemoryBytes)",
			providers.FeatureArgs:          "the container spec's Command and Args (args alone keep the image's entrypoint)",
			providers.FeatureRollout: "start-first rolling update, one task at a time, rolled back when it fails; " +
				"an HTTP or TCP check is first passed by a one-task canary of the new spec (a failing one leaves the " +
				"service untouched)",
		},
	}
}

// Validate reports what swarm cannot honour beyond Capabilities, with the publishing mode the provider uses (see
// validator.Validate).
func (p *Provider) Validate(w schema.Workload) []providers.Problem {
	return validator{publish: p.Publish}.Validate(w)
}

// validator is the swarm checks of a workload beyond Capabilities, shared by plan time (the Provider, with the
// publishing mode it uses) and `berth validate` (Offline, with settings.publish: "" when unset).
type validator struct{ publish string }

// Validate reports two public ports on one published port, and, with host-mode publishing, a public UDP port
// (berth's proxy is TCP only).
func (v validator) Validate(w schema.Workload) []providers.Problem {
	var out []providers.Problem
	type pp struct {
		port  int
		proto string
	}
	seen := map[pp]int{}
	for i, port := range w.Ports {
		if !port.Public {
			continue
		}
		if v.publish == PublishHost && protocolOf(port) == "udp" {
			out = append(out, providers.Problem{Field: fmt.Sprintf("ports[%d].protocol", i),
				Message: "swarm: public UDP ports need the routing mesh (publish: ingress, IPVS on the nodes); with " +
					"host-mode publishing berth's proxy is TCP only"})
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

// Close stops the background sync and the public-port proxies, and releases the client when New made it. Services
// keep running; a new Provider serves their ports again.
func (p *Provider) Close() error {
	p.pxMu.Lock()
	p.closed = true
	stop, synced := p.stop, p.synced
	proxies := p.proxies
	p.proxies = map[int]*served{}
	p.pxMu.Unlock()
	if stop != nil {
		stop()
		<-synced
	}
	for _, s := range proxies {
		s.px.Close()
	}
	if p.ownsClient {
		return p.cli.Close()
	}
	return nil
}

// startSync starts the background sync of PublishHost's proxies (Options.Background), once.
func (p *Provider) startSync() {
	p.pxMu.Lock()
	defer p.pxMu.Unlock()
	if !p.background || p.Publish != PublishHost || p.stop != nil || p.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stop, p.synced = cancel, make(chan struct{})
	go func() {
		defer close(p.synced)
		t := time.NewTimer(0)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := p.syncPorts(ctx); err != nil && ctx.Err() == nil {
				p.log.WarnContext(ctx, "sync of public ports", "err", err)
			}
			jitter := time.Duration((rand.Float64()*0.2 - 0.1) * float64(SyncInterval))
			t.Reset(SyncInterval + jitter)
		}
	}()
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
	p.startSync()
	return nil
}

// classify sorts an engine error.
func classify(err error) providers.Class {
	switch {
	case err == nil:
		return providers.Final
	case errors.Is(err, providers.ErrPermanent):
		return providers.Invalid // the call said so itself
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
