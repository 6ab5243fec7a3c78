package providers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/berth-dev/berth/schema"
)

// Ownership labels (tags, meta) that every object berth creates carries. Finding what berth owns only ever needs
// these; deletion only touches objects whose instance and environment labels match.
const (
	LabelInstance    = "berth.dev/instance"
	LabelEnvironment = "berth.dev/environment"
	LabelWorkload    = "berth.dev/workload"
	LabelTarget      = "berth.dev/target"
	LabelSpecHash    = "berth.dev/spec-hash"
	LabelReplica     = "berth.dev/replica"
	// LabelPreview is the pull-request number of a preview environment's objects (Owner.Preview); LabelHead the
	// head commit they were last created or rolled from (Desired.Preview.Head), informational.
	LabelPreview = "berth.dev/preview"
	LabelHead    = "berth.dev/head"
)

// Owner scopes every call: the managing berth instance and one environment.
type Owner struct {
	Instance    string `json:"instance"`
	Environment string `json:"environment"`
	// Preview is the pull-request number when Environment is a preview environment ("pr-42"), 0 otherwise.
	// Providers write it as LabelPreview on every object and may keep a preview's objects apart (Kubernetes: a
	// namespace of its own, see PreviewNamespace); List and Delete find them the same way.
	Preview int `json:"preview,omitempty"`
}

// Desired is what the reconciler asks a provider to run.
type Desired struct {
	Owner    Owner           `json:"owner"`
	Target   string          `json:"target"`
	Workload schema.Workload `json:"workload"`
	// SpecHash identifies Workload and its secrets' fingerprints (see DesiredHash); objects carry it so a changed
	// spec, or a rotated secret, is seen from the runtime alone.
	SpecHash string `json:"specHash"`
	// Secrets are the secrets Workload uses (Workload.Secrets), by name. Never serialised, logged or written in
	// a label: a provider passes Source to its runtime natively where it can, or delivers Value (env values, files,
	// the runtime's own secret objects), and labels objects with Fingerprint only.
	Secrets map[string]Secret `json:"-"`
	// Preview is set for a workload of a preview environment (Owner.Preview is its number): the head commit to
	// label objects with (LabelHead) and the host names its public ports are served at, where the runtime routes
	// by host name (Capabilities.HostRoutes: a Kubernetes Ingress rule per host).
	Preview *schema.Preview `json:"preview,omitempty"`
	// ImageAuth is the credential for pulling Workload.Image, from the repository's `registries:` section, for
	// providers whose runtime pulls with what berth gives it (Capabilities.PullsImages); nil for an anonymous
	// pull or an image the runtime already has. Never serialised or logged.
	ImageAuth *RegistryAuth `json:"-"`
}

// RegistryAuth is a registry credential as a provider receives it. Format and LogValue never show the password.
type RegistryAuth struct {
	// Server is the registry host ("127.0.0.1:5000", "ghcr.io").
	Server   string
	Username string
	Password []byte
}

// Format prints a RegistryAuth as its server and user name, whatever the verb.
func (a RegistryAuth) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "registry-auth(%s %s)", a.Server, a.Username)
}

// LogValue keeps the password out of structured logs.
func (a RegistryAuth) LogValue() slog.Value {
	return slog.GroupValue(slog.String("server", a.Server), slog.String("username", a.Username))
}

// Secret is one secret a workload uses, as its provider receives it.
type Secret struct {
	Name string
	// Source is where the value comes from: a SOPS file of the repository, or a reference to a store.
	Source schema.Secret
	// Value is the clear value, when berth resolved it (always for SOPS); nil for a reference to a store, which
	// the provider passes natively (an ECS valueFrom, a Kubernetes Secret by name, a Nomad variable) or resolves
	// itself with its own credentials (Key Vault for ACI, Secret Manager for Compute Engine).
	Value []byte
	// Fingerprint is a keyed hash of Value (of the reference, for a store berth does not read): safe in labels,
	// and part of DesiredHash, so that a rotated secret rolls the workload.
	Fingerprint string
}

// Format prints a Secret as its name and fingerprint, whatever the verb: no %v or %+v can show a value.
func (s Secret) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "secret(%s %s)", s.Name, s.Fingerprint)
}

// LogValue keeps a Secret's value out of structured logs.
func (s Secret) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", s.Name), slog.String("fingerprint", s.Fingerprint))
}

// DesiredHash is SpecHash of w with the fingerprints of the secrets it uses folded in, so that a rotated secret is
// a changed spec; equal to SpecHash(w) for a workload without secrets.
func DesiredHash(w schema.Workload, secrets map[string]Secret) string {
	names := w.Secrets()
	if len(names) == 0 {
		return SpecHash(w)
	}
	h := sha256.New()
	h.Write([]byte(SpecHash(w)))
	for _, n := range names {
		fmt.Fprintf(h, "\x00%s=%s", n, secrets[n].Fingerprint)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Observed is what a provider finds running for one owned workload.
type Observed struct {
	Workload string `json:"workload"`
	Target   string `json:"target"`
	// SpecHash is the hash label of the objects found; when replicas disagree it is the hash of the majority and
	// Replicas tells the rest.
	SpecHash string `json:"specHash"`
	// Spec is the workload as the runtime runs it, read from the live objects' own fields, never from a copy berth
	// stored beside them: image, command, args, env, ports (public ones from the objects that publish them),
	// replicas, resources and the health check, in the form Normalize gives a desired workload (so an untouched
	// workload reads back equal to what was applied). The planner diffs it with the desired workload on every pass:
	// a field changed by hand shows as drift with its old and new value, whatever the spec-hash labels say.
	Spec schema.Workload `json:"spec"`
	// Replicas are the individual copies (containers, tasks, instances) found.
	Replicas []Replica `json:"replicas"`
	// SecretFingerprints are the fingerprints of the secrets the runtime's objects were given, by secret name, as
	// the provider wrote them beside the reference (Spec.SecretEnv and Spec.Files read back the names).
	SecretFingerprints map[string]string `json:"secretFingerprints,omitempty"`
	// Missing names the side objects berth made for this workload that are gone ("Service web-public", "target
	// group berth-web-8080"): the plan shows each as drift and Apply recreates it.
	Missing []string `json:"missing,omitempty"`
	// Kept lists values in fields berth manages that the runtime keeps and Apply will not remove (a value another
	// field manager owns). They are left out of Spec; the plan says so in words and never shows them as a change.
	Kept []Kept `json:"kept,omitempty"`
	// Endpoints are where the workload's public ports answer, read from the runtime (a published host port, a
	// load balancer's or a container group's address, an Ingress host); a public port the runtime has not given an
	// address yet is left out. Previews report them on the pull request once the workload is healthy.
	Endpoints []Endpoint `json:"endpoints,omitempty"`
}

// Endpoint is where one public port of a workload answers.
type Endpoint struct {
	// Port is the container port (schema.Port.Port).
	Port int `json:"port"`
	// Address is "host:port" as clients reach it ("127.0.0.1:8080", "203.0.113.7:8080",
	// "web-abc.westeurope.azurecontainer.io:8080"); a wildcard listen address reads as 127.0.0.1.
	Address string `json:"address"`
	// URL is set when the runtime serves the port under a host name of its own routing (an Ingress host):
	// "http://pr-42-x1y2.preview.example/". Otherwise the URL is http://Address/.
	URL string `json:"url,omitempty"`
	// Watch is set when Address is served by a proxy inside the berth process (Docker, Swarm in host mode): it
	// says how berth's edge (providers/endpoint/edge), a process of its own that outlives the controller, finds
	// the replicas behind the port itself, so that it keeps forwarding to them while no controller runs.
	Watch *Watch `json:"watch,omitempty"`
}

// Watch kinds.
const (
	// WatchContainers: the running containers carrying Labels on the Docker engine Engine, at the host port the
	// engine published their container port Port on (127.0.0.1).
	WatchContainers = "containers"
	// WatchTasks: the running tasks of the swarm services carrying Labels on the swarm whose manager is Engine, at
	// the host-mode port their container port Port is published on, on their node's address.
	WatchTasks = "tasks"
)

// Watch is how an edge follows the replicas of one public port on a runtime by its ownership labels alone.
type Watch struct {
	Kind string `json:"kind"`
	// Engine is the Docker engine's address (DOCKER_HOST syntax; "" for the environment's default).
	Engine string `json:"engine,omitempty"`
	// Labels select the workload's objects (LabelInstance, LabelEnvironment, LabelWorkload, LabelTarget).
	Labels map[string]string `json:"labels"`
	// Port is the container port.
	Port int `json:"port"`
	// HealthPath, when set, is the path of the workload's HTTP health check on Port: the edge forwards only to a
	// replica answering it with 2xx or 3xx. Otherwise a replica counts once a TCP connection to it opens.
	HealthPath string `json:"healthPath,omitempty"`
}

// EnvironmentLister is an optional interface: the environments that have objects of instance on target, found
// by the ownership labels alone (with no configuration and no state), so that previews whose pull request is gone
// are found and removed after a crash or a lost state store.
type EnvironmentLister interface {
	Environments(ctx context.Context, instance, target string) ([]EnvironmentRef, error)
}

// EnvironmentRef is one environment found on a runtime.
type EnvironmentRef struct {
	Name string `json:"name"`
	// Preview is its LabelPreview (0 when its objects carry none), Head the newest LabelHead found ("" for none).
	Preview int    `json:"preview,omitempty"`
	Head    string `json:"head,omitempty"`
}

// EnvironmentDeleter is an optional interface for runtimes where an environment has objects of its own beside its
// workloads' (a preview's Kubernetes namespace): DeleteEnvironment removes them once the workloads are deleted.
// Deleting what is gone is not an error; it only touches objects carrying owner's labels.
type EnvironmentDeleter interface {
	DeleteEnvironment(ctx context.Context, owner Owner, target string) error
}

// Kept is one value Apply leaves in place, and why. It names the field, never the value (it may be a secret).
type Kept struct {
	// Path is the field, as in a plan's changes ("env.EXTRA").
	Path string `json:"path"`
	// Reason says who holds it and how to let berth take it ("owned by field manager \"kubectl-edit\"; set
	// takeOwnership: true on the target to remove it").
	Reason string `json:"reason"`
}

// Replica is one running copy of a workload.
type Replica struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	SpecHash string `json:"specHash"`
	// State is the runtime's word for it: "running", "exited", "created", "pending", ...
	State   string `json:"state"`
	Running bool   `json:"running"`
	// Health is "healthy", "unhealthy", "starting" or "" when the workload has no health check.
	Health string `json:"health,omitempty"`
}

// Ready tells whether a replica counts as serving.
func (r Replica) Ready() bool { return r.Running && (r.Health == "" || r.Health == "healthy") }

// Capabilities say what a provider can honour; the reconciler checks workloads against them at plan time.
type Capabilities struct {
	HealthHTTP    bool `json:"healthHTTP"`
	HealthTCP     bool `json:"healthTCP"`
	HealthCommand bool `json:"healthCommand"`
	PublicPorts   bool `json:"publicPorts"`
	UDP           bool `json:"udp"`
	CPULimit      bool `json:"cpuLimit"`
	MemoryLimit   bool `json:"memoryLimit"`
	// MaxReplicas is 0 for no limit.
	MaxReplicas int `json:"maxReplicas,omitempty"`
	// SecretKinds are the secret sources (schema.Secret kinds: "sops", "aws", "kubernetes", ...) the provider
	// can deliver to its runtime; a workload using another kind is a plan-time problem.
	SecretKinds []string `json:"secretKinds,omitempty"`
	// SecretFiles tells whether secrets can be mounted as files (Workload.Files).
	SecretFiles bool `json:"secretFiles,omitempty"`
	// HostRoutes tells whether the runtime serves a preview's public ports under the host names of
	// Desired.Preview.Hosts itself (a Kubernetes Ingress); elsewhere berth's own preview router does, in front of
	// Observed.Endpoints.
	HostRoutes bool `json:"hostRoutes,omitempty"`
	// SharedHostPorts tells whether workloads of one target share the host ports of their public ports (one
	// Docker host, a Swarm's ingress, Nomad and Marathon nodes): a preview then gets host ports of its own. Where
	// each replica has its own address (ECS tasks, ACI groups, Compute Engine instances, Kubernetes Services) a
	// preview keeps its ports as declared.
	SharedHostPorts bool `json:"sharedHostPorts,omitempty"`
	// How says, per feature (the Feature* keys), how the runtime honours it; the portability matrix of
	// docs/providers.md is made from it and from what the runtimes received. A feature without a key is not
	// honoured.
	How map[string]string `json:"how,omitempty"`
	// PullsImages tells whether the runtime pulls Workload.Image itself with Desired.ImageAuth (Docker, Swarm);
	// elsewhere the runtime pulls with credentials of its own and ImageAuth is not given.
	PullsImages bool `json:"pullsImages,omitempty"`
}

// Provider is one runtime adapter. Implementations must be safe for concurrent use on different workloads; the
// reconciler never runs two calls for the same workload at once.
type Provider interface {
	// Type is the target type it serves ("docker").
	Type() string
	Capabilities() Capabilities
	// List returns every workload owned by owner on this target, found by ownership labels alone.
	List(ctx context.Context, owner Owner, target string) ([]Observed, error)
	// Apply converges one workload to d: creates what is missing, replaces replicas whose spec hash differs
	// (make-before-break: the new replica is started and healthy before the old one is stopped), repairs drift
	// (missing, stopped or unhealthy replicas) and scales. It is idempotent and safe to repeat after a crash at any
	// point. It returns when the workload runs d.Workload.Replicas ready replicas of d.SpecHash, or with an error.
	Apply(ctx context.Context, d Desired) error
	// Delete removes every object of the workload owned by owner on this target. Deleting what is already gone is
	// not an error.
	Delete(ctx context.Context, owner Owner, target, workload string) error
}

// Normalizer is an optional interface: the form in which the runtime reads a workload back (durations rounded to
// the runtime's unit, values it fills in by default). The planner compares Observed.Spec with Normalize(desired),
// after the generic Normalize, so that only real differences show. A provider whose read-back is exact needs none.
type Normalizer interface {
	Normalize(w schema.Workload) schema.Workload
}

// Normalize is the form every provider reads a workload back in, whatever its runtime: positions, the provider
// name, how it migrates, its ports' stable names and empty-but-set collections dropped, protocols in lower case ("tcp" by default), and a public port's host
// port defaulted to its port. Providers build Observed.Spec in this form; the planner applies it to both sides.
func Normalize(w schema.Workload) schema.Workload {
	w.Pos = nil
	w.Provider = ""
	// How the workload moves and its stable names are berth's, not the runtime's: nothing reads them back.
	w.Migration = schema.Migration{}
	w.Stateful = false
	if len(w.Command) == 0 {
		w.Command = nil
	}
	if len(w.Args) == 0 {
		w.Args = nil
	}
	if len(w.Env) == 0 {
		w.Env = nil
	}
	if len(w.SecretEnv) == 0 {
		w.SecretEnv = nil
	}
	if len(w.Files) == 0 {
		w.Files = nil
	}
	if len(w.Ports) == 0 {
		w.Ports = nil
	} else {
		ps := make([]schema.Port, len(w.Ports))
		for i, p := range w.Ports {
			p.Protocol = strings.ToLower(p.Protocol)
			p.Endpoint = nil
			if p.Protocol == "" {
				p.Protocol = "tcp"
			}
			switch {
			case !p.Public:
				p.HostPort = 0
			case p.HostPort == 0:
				p.HostPort = p.Port
			}
			ps[i] = p
		}
		w.Ports = ps
	}
	if w.Health != nil {
		h := *w.Health
		if len(h.Command) == 0 {
			h.Command = nil
		}
		w.Health = &h
	}
	return w
}

// Validator is an optional interface: provider-specific checks of a workload at plan time, beyond Capabilities.
type Validator interface {
	Validate(w schema.Workload) []Problem
}

// Closer is an optional interface for providers holding resources (connections, proxies).
type Closer interface {
	Close() error
}

// Problem is a workload field a provider cannot honour.
type Problem struct {
	// Field is the path relative to the workload, e.g. "health.command".
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ErrPermanent marks an error that retrying will not fix (invalid request, missing image). Wrap it with
// fmt.Errorf("...: %w", ErrPermanent) or use Permanent.
var ErrPermanent = errors.New("permanent error")

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() []error { return []error{e.err, ErrPermanent} }

// Permanent marks err as not worth retrying: errors.Is(Permanent(err), ErrPermanent) holds.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// Sleep waits d, or until ctx ends (returning its error): the pause between polls and retries of providers.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
