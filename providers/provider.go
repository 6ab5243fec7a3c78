package providers

import (
	"context"
	"errors"
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
)

// Owner scopes every call: the managing berth instance and one environment.
type Owner struct {
	Instance    string `json:"instance"`
	Environment string `json:"environment"`
}

// Desired is what the reconciler asks a provider to run.
type Desired struct {
	Owner    Owner           `json:"owner"`
	Target   string          `json:"target"`
	Workload schema.Workload `json:"workload"`
	// SpecHash identifies Workload (see SpecHash); objects carry it so a changed spec is seen from the runtime alone.
	SpecHash string `json:"specHash"`
}

// Observed is what a provider finds running for one owned workload.
type Observed struct {
	Workload string `json:"workload"`
	Target   string `json:"target"`
	// SpecHash is the hash label of the objects found; when replicas disagree it is the hash of the majority and
	// Replicas tells the rest.
	SpecHash string `json:"specHash"`
	// Spec is the workload as read back from the runtime, as far as the runtime tells it (image, env, replicas,
	// ports, ...), for field-level diffs.
	Spec schema.Workload `json:"spec"`
	// Replicas are the individual copies (containers, tasks, instances) found.
	Replicas []Replica `json:"replicas"`
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
