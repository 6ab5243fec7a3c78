package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/docker/proxy"
	"github.com/berth-dev/berth/schema"
)

// Defaults and bounds.
const (
	// DefaultPublicAddress is where public ports listen unless the target sets publicAddress.
	DefaultPublicAddress = "0.0.0.0"
	// CallTimeout bounds every engine call that has no longer bound of its own.
	CallTimeout = 30 * time.Second
	// PullTimeout bounds each attempt to pull an image that is not in the engine's store.
	PullTimeout = 5 * time.Minute
	// PullAttempts bounds the attempts of a pull whose failure may pass (see pull); PullRetryBase and PullRetryMax
	// shape the backoff between them.
	PullAttempts  = 4
	PullRetryBase = 500 * time.Millisecond
	PullRetryMax  = 5 * time.Second
	// StopGrace is how long a replica has to exit after SIGTERM before it is killed.
	StopGrace = 10 * time.Second
	// DrainSettle is how long a removed backend is left alone after the proxy handed it its last connection, so
	// that connection reaches the process before SIGTERM closes its listener.
	DrainSettle = 500 * time.Millisecond
	// SyncInterval is the period of the background sync of the proxies (±10% jitter).
	SyncInterval = time.Second
)

// labelSwarmService is the label the engine puts on the container of a swarm task: the service's ID.
const labelSwarmService = "com.docker.swarm.service.id"

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("docker provider closed")

func init() {
	providers.Register("docker", New)
	providers.RegisterOffline("docker", Offline)
}

// Offline is what a docker target honours, from its settings alone (no engine is reached): the Capabilities and
// the Validate of a Provider built for it. It is the registered providers.Offline.
func Offline(t schema.Target) (providers.Capabilities, providers.Validator, error) {
	if _, err := parseSettings(t); err != nil {
		return providers.Capabilities{}, nil, err
	}
	return capabilities(), validator{}, nil
}

// Provider runs workloads as containers of one Docker engine. Build it with New or NewWithClient.
type Provider struct {
	cli           *client.Client
	ownsClient    bool
	target        string
	instance      string // when set, the background sync only serves this instance's containers
	publicAddress string
	engine        string // the engine as Endpoint.Watch names it: the host setting ("" for the default), or the client's
	log           *slog.Logger

	netCreate sync.Mutex   // serialises network creation
	netUse    sync.RWMutex // read: a container is being attached; write: a network is being removed

	negMu      sync.Mutex
	negotiated bool

	watches providers.Watches // one pointer per distinct Watch

	imgMu  sync.Mutex
	images map[string]imageDefaults // by image ID
	refs   map[string]string        // image reference → the ID it named when last seen

	mu        sync.Mutex
	closed    bool
	listeners map[int]*listener // by public host port
	draining  map[string]bool   // container IDs being drained by Apply or Delete
	busy      map[wkey]int      // workloads with an Apply or Delete in flight
	gen       map[wkey]uint64   // bumped when an Apply or Delete starts or ends
	fails     map[string]int    // consecutive failed probes per container, for the sync

	stopSync context.CancelFunc
	syncDone chan struct{}
}

// listener is a public port's proxy and the workload it belongs to.
type listener struct {
	owner wkey
	p     *proxy.Proxy
}

// New builds the provider for target t from its settings (host, publicAddress). It is the registered factory.
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
		return nil, fmt.Errorf("target %q: docker client: %w", t.Name, err)
	}
	p, err := newProvider(cli, t, s, opts)
	if err != nil {
		cli.Close()
		return nil, err
	}
	p.ownsClient = true
	p.engine = s.host
	return p, nil
}

// NewWithClient builds the provider on an existing client, which Close leaves open. The host setting is ignored:
// the engine is the client's, and Endpoint.Watch names it by the client's address (DaemonHost).
func NewWithClient(cli *client.Client, t schema.Target, opts providers.Options) (*Provider, error) {
	s, err := parseSettings(t)
	if err != nil {
		return nil, err
	}
	p, err := newProvider(cli, t, s, opts)
	if err != nil {
		return nil, err
	}
	p.engine = cli.DaemonHost()
	return p, nil
}

type settings struct {
	host, publicAddress string
}

func parseSettings(t schema.Target) (settings, error) {
	s := settings{publicAddress: DefaultPublicAddress}
	keys := make([]string, 0, len(t.Settings))
	for k := range t.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := t.Settings[k]
		str, ok := v.(string)
		switch k {
		case "host", "publicAddress":
			if !ok || str == "" {
				return s, fmt.Errorf("%s: target %q: settings.%s: want a non-empty string, got %T", t.Pos, t.Name, k, v)
			}
			if k == "host" {
				s.host = str
			} else {
				s.publicAddress = str
			}
		default:
			return s, fmt.Errorf("%s: target %q: settings.%s: unknown setting (known: host, publicAddress)", t.Pos, t.Name, k)
		}
	}
	return s, nil
}

func newProvider(cli *client.Client, t schema.Target, s settings, opts providers.Options) (*Provider, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Provider{
		cli:           cli,
		target:        t.Name,
		instance:      opts.Instance,
		publicAddress: s.publicAddress,
		log:           log,
		listeners:     map[int]*listener{},
		draining:      map[string]bool{},
		busy:          map[wkey]int{},
		gen:           map[wkey]uint64{},
		fails:         map[string]int{},
		images:        map[string]imageDefaults{},
		refs:          map[string]string{},
		stopSync:      cancel,
		syncDone:      make(chan struct{}),
	}
	if opts.Background {
		go p.syncLoop(ctx)
	} else {
		close(p.syncDone)
	}
	return p, nil
}

// Type is "docker".
func (p *Provider) Type() string { return "docker" }

// Capabilities: HTTP, TCP and command health checks, public TCP ports, CPU and memory limits; SOPS secrets as
// environment values and files (a store reference cannot be resolved by the engine); images pulled with
// Desired.ImageAuth.
func (p *Provider) Capabilities() providers.Capabilities { return capabilities() }

// capabilities are every docker target's: none depends on the settings or the engine.
func capabilities() providers.Capabilities {
	return providers.Capabilities{SharedHostPorts: true,
		SecretKinds:   []string{schema.SecretSOPS},
		SecretFiles:   true,
		HealthHTTP:    true,
		HealthTCP:     true,
		HealthCommand: true,
		PublicPorts:   true,
		UDP:           true, // internal UDP ports work; public ones do not (see Validate)
		CPULimit:      true,
		MemoryLimit:   true,
		PullsImages:   true,
		How: map[string]string{
			providers.FeaturePublicPort:    "berth's TCP proxy on the host port",
			providers.FeatureAddress:       "publicAddress:hostPort (a wildcard publicAddress reads as 127.0.0.1)",
			providers.FeatureHealthHTTP:    "berth probes each container at its port published on 127.0.0.1",
			providers.FeatureHealthTCP:     "berth connects to each container at its port published on 127.0.0.1",
			providers.FeatureHealthCommand: "the engine's exec-form HEALTHCHECK in the container",
			providers.FeatureCPU:           "HostConfig.NanoCPUs (a hard limit)",
			providers.FeatureMemory:        "HostConfig.Memory (a hard limit)",
			providers.FeatureArgs:          "the container's Entrypoint and Cmd (args alone keep the image's entrypoint)",
			providers.FeatureRollout:       "make-before-break: new container ready, proxy switched, old drained",
		},
	}
}

// Validate reports what this provider cannot honour beyond Capabilities (see validator.Validate).
func (p *Provider) Validate(w schema.Workload) []providers.Problem { return validator{}.Validate(w) }

// validator is the docker checks of a workload beyond Capabilities, the same for every target: plan time (the
// Provider) and `berth validate` (Offline) share it.
type validator struct{}

// Validate reports public UDP ports (the proxy is TCP only), two public ports on the same host port, and a
// container port listed twice.
func (validator) Validate(w schema.Workload) []providers.Problem {
	var out []providers.Problem
	seen := map[int]int{}
	listed := map[string]int{}
	for i, port := range w.Ports {
		proto := strings.ToLower(port.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		key := fmt.Sprintf("%d/%s", port.Port, proto)
		if j, dup := listed[key]; dup {
			out = append(out, providers.Problem{
				Field:   fmt.Sprintf("ports[%d].port", i),
				Message: fmt.Sprintf("docker: port %s is already listed as ports[%d] (a container publishes it once)", key, j),
			})
			continue
		}
		listed[key] = i
		if !port.Public {
			continue
		}
		if port.Protocol == "udp" {
			out = append(out, providers.Problem{
				Field:   fmt.Sprintf("ports[%d].public", i),
				Message: "docker: public UDP ports are not supported (the built-in proxy is TCP only)",
			})
			continue
		}
		hp := port.HostPort
		if hp == 0 {
			hp = port.Port
		}
		if j, dup := seen[hp]; dup {
			out = append(out, providers.Problem{
				Field:   fmt.Sprintf("ports[%d].hostPort", i),
				Message: fmt.Sprintf("docker: host port %d is already used by ports[%d]", hp, j),
			})
		}
		seen[hp] = i
	}
	return out
}

// Close stops the background sync and every proxy. Containers keep running.
func (p *Provider) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.stopSync()
	<-p.syncDone
	p.mu.Lock()
	ls := p.listeners
	p.listeners = map[int]*listener{}
	p.mu.Unlock()
	for _, l := range ls {
		l.p.Close()
	}
	if p.ownsClient {
		return p.cli.Close()
	}
	return nil
}

// begin marks k as having an Apply or Delete in flight: the background sync leaves its proxies alone.
func (p *Provider) begin(k wkey) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.busy[k]++
	p.gen[k]++
	return nil
}

func (p *Provider) end(k wkey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy[k]--; p.busy[k] <= 0 {
		delete(p.busy, k)
	}
	p.gen[k]++
}

// negotiate settles the API version once, before any other call: the client reads the negotiated version without
// a lock in some calls, so concurrent first calls would race.
func (p *Provider) negotiate(ctx context.Context) error {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.negotiated {
		return nil
	}
	cctx, cancel := callCtx(ctx)
	ping, err := p.cli.Ping(cctx)
	cancel()
	if err != nil {
		return fmt.Errorf("docker engine of target %q: %w", p.target, err)
	}
	p.cli.NegotiateAPIVersionPing(ping)
	p.negotiated = true
	return nil
}

func callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, CallTimeout)
}

// listContainers returns the inspected containers carrying every label of match, oldest first.
func (p *Provider) listContainers(ctx context.Context, match map[string]string, all bool) ([]container.InspectResponse, error) {
	if err := p.negotiate(ctx); err != nil {
		return nil, err
	}
	f := filters.NewArgs()
	for k, v := range match {
		if v == "" {
			f.Add("label", k)
		} else {
			f.Add("label", k+"="+v)
		}
	}
	cctx, cancel := callCtx(ctx)
	sums, err := p.cli.ContainerList(cctx, container.ListOptions{All: all, Filters: f})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	sort.Slice(sums, func(i, j int) bool { return sums[i].Created < sums[j].Created })
	out := make([]container.InspectResponse, 0, len(sums))
	for _, s := range sums {
		cctx, cancel := callCtx(ctx)
		ci, err := p.cli.ContainerInspect(cctx, s.ID)
		cancel()
		if cerrdefs.IsNotFound(err) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("inspect container %s: %w", s.ID[:12], err)
		}
		if ci.Config == nil || ci.State == nil {
			continue
		}
		ci.Name = strings.TrimPrefix(ci.Name, "/")
		out = append(out, ci)
	}
	return out, nil
}

// ensureImage makes sure the image ref is in the engine's store, pulling it with auth (see pull) when it is not, and
// returns its defaults. A reference pinned by digest ("name:tag@sha256:...") is looked up by that digest: another
// image under the tag does not count. A pull that cannot succeed is a permanent error naming ref.
func (p *Provider) ensureImage(ctx context.Context, log *slog.Logger, ref string, auth *providers.RegistryAuth) (imageDefaults, error) {
	if err := p.negotiate(ctx); err != nil {
		return imageDefaults{}, err
	}
	cctx, cancel := callCtx(ctx)
	img, err := p.cli.ImageInspect(cctx, ref)
	cancel()
	if err == nil {
		return p.remember(ref, img), nil
	}
	if !cerrdefs.IsNotFound(err) {
		return imageDefaults{}, fmt.Errorf("inspect image %q: %w", ref, err)
	}
	enc, err := encodeAuth(ref, auth)
	if err != nil {
		return imageDefaults{}, providers.Permanent(err)
	}
	log.InfoContext(ctx, "pulling image", "image", ref, "authenticated", auth != nil)
	if err := p.pull(ctx, log, ref, enc); err != nil {
		if errors.Is(err, providers.ErrPermanent) {
			return imageDefaults{}, fmt.Errorf("image %q is not in the engine's store and cannot be pulled: %w", ref, err)
		}
		return imageDefaults{}, fmt.Errorf("image %q is not in the engine's store: %w", ref, err)
	}
	cctx, cancel = callCtx(ctx)
	img, err = p.cli.ImageInspect(cctx, ref)
	cancel()
	if err != nil {
		return imageDefaults{}, fmt.Errorf("inspect image %q after pulling it: %w", ref, err)
	}
	log.InfoContext(ctx, "image pulled", "image", ref, "id", img.ID)
	return p.remember(ref, img), nil
}

// ensureNetwork returns the name of the bridge network of (instance, environment), creating it when missing (with
// LabelPreview in a preview environment).
func (p *Provider) ensureNetwork(ctx context.Context, k wkey, preview int) (string, error) {
	name := networkName(k.Instance, k.Environment)
	p.netCreate.Lock()
	defer p.netCreate.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		cctx, cancel := callCtx(ctx)
		nets, err := p.cli.NetworkList(cctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
		cancel()
		if err != nil {
			return "", fmt.Errorf("list networks: %w", err)
		}
		for _, n := range nets {
			if n.Name != name {
				continue
			}
			if n.Labels[providers.LabelInstance] != k.Instance || n.Labels[providers.LabelEnvironment] != k.Environment {
				return "", providers.Permanent(fmt.Errorf("network %s exists but is not owned by berth instance %q environment %q", name, k.Instance, k.Environment))
			}
			return name, nil
		}
		cctx, cancel = callCtx(ctx)
		labels := map[string]string{providers.LabelInstance: k.Instance, providers.LabelEnvironment: k.Environment}
		maps.Copy(labels, providers.PreviewLabels(providers.Owner{Preview: preview}, nil))
		_, err = p.cli.NetworkCreate(cctx, name, network.CreateOptions{Driver: "bridge", Labels: labels})
		cancel()
		if err == nil {
			p.log.InfoContext(ctx, "network created", "env", k.Environment, "network", name)
			return name, nil
		}
		if !cerrdefs.IsConflict(err) {
			return "", fmt.Errorf("create network %s: %w", name, err)
		}
	}
	return "", fmt.Errorf("create network %s: name conflict persists", name)
}

// removeNetworkIfUnused removes the (instance, environment) network once no owned container of it is left. The
// containers of swarm tasks of that environment (a Swarm target on the same engine: a migration running both
// copies) carry the same labels but are on the Swarm provider's overlay network, not this one: they do not count.
func (p *Provider) removeNetworkIfUnused(ctx context.Context, instance, env string) {
	p.netUse.Lock()
	defer p.netUse.Unlock()
	cs, err := p.listContainers(ctx, map[string]string{providers.LabelInstance: instance, providers.LabelEnvironment: env}, true)
	if err != nil || slices.ContainsFunc(cs, func(c container.InspectResponse) bool {
		return c.Config.Labels[labelSwarmService] == ""
	}) {
		return
	}
	name := networkName(instance, env)
	cctx, cancel := callCtx(ctx)
	defer cancel()
	n, err := p.cli.NetworkInspect(cctx, name, network.InspectOptions{})
	if err != nil || n.Labels[providers.LabelInstance] != instance || n.Labels[providers.LabelEnvironment] != env {
		return
	}
	if err := p.cli.NetworkRemove(cctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
		p.log.WarnContext(ctx, "remove network", "env", env, "network", name, "err", err)
	}
}

var (
	_ providers.Provider   = (*Provider)(nil)
	_ providers.Validator  = (*Provider)(nil)
	_ providers.Closer     = (*Provider)(nil)
	_ providers.Normalizer = (*Provider)(nil)

	_ providers.EnvironmentLister = (*Provider)(nil)
)
