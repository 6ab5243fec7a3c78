package fake

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"sync"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Type is the target type the fake serves.
const Type = "fake"

// ErrInjected is the error of an injected failure (wrapped with providers.ErrPermanent when permanent).
var ErrInjected = errors.New("injected failure")

// ErrUnhealthy is the error of an Apply whose new replicas fail their health check (see SetHealth).
var ErrUnhealthy = errors.New("the new replicas fail their health check")

// Call is one recorded provider call.
type Call struct {
	Op          string `json:"op"` // "list", "apply", "delete"
	Environment string `json:"environment"`
	Target      string `json:"target"`
	Workload    string `json:"workload,omitempty"`
	SpecHash    string `json:"specHash,omitempty"`
	Err         string `json:"err,omitempty"`
}

type key struct{ instance, env, target, workload string }

// previewLabels are the preview labels a workload's objects carry.
type previewLabels struct {
	number int
	head   string
}

type failure struct {
	n         int
	permanent bool
}

// Provider is the in-memory provider. The zero value is not usable; call New.
type Provider struct {
	caps providers.Capabilities

	mu        sync.Mutex
	state     map[key]*providers.Observed
	values    map[key]map[string][]byte // the secret values the "runtime" was given, by workload and secret
	previews  map[key]previewLabels     // the preview labels of a workload's objects
	calls     []Call
	fail      map[string]*failure
	holds     map[string]chan struct{}
	validate  func(schema.Workload) []providers.Problem
	healthy   func(schema.Workload) bool
	inFlight  int
	maxFlight int
	keyBusy   map[key]bool
	overlaps  int
	seq       int
}

// AllCapabilities is the default capability set of a fake provider.
var AllCapabilities = providers.Capabilities{HealthHTTP: true, HealthTCP: true, HealthCommand: true,
	PublicPorts: true, UDP: true, CPULimit: true, MemoryLimit: true, SecretFiles: true, SharedHostPorts: true,
	SecretKinds: []string{schema.SecretSOPS, schema.SecretAWS, schema.SecretKubernetes, schema.SecretNomad,
		schema.SecretVault, schema.SecretAzure, schema.SecretGCP}}

// New returns an empty fake provider with every capability.
func New() *Provider {
	return &Provider{caps: AllCapabilities, state: map[key]*providers.Observed{}, values: map[key]map[string][]byte{},
		previews: map[key]previewLabels{},
		fail:     map[string]*failure{},
		holds:    map[string]chan struct{}{}, keyBusy: map[key]bool{}}
}

// SetCapabilities replaces the capabilities the provider declares.
func (p *Provider) SetCapabilities(c providers.Capabilities) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.caps = c
}

// SetValidator installs provider-specific plan-time checks (the optional providers.Validator).
func (p *Provider) SetValidator(f func(schema.Workload) []providers.Problem) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.validate = f
}

func (p *Provider) Type() string { return Type }

func (p *Provider) Capabilities() providers.Capabilities {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.caps
}

// SetHealth installs the fake's health checking: healthy tells whether the replicas of a workload pass their
// health check (nil, the default: every replica does). An Apply of a workload that does not is make-before-break
// held, as a runtime's rollout waiting on health is: the new replicas start beside the old ones, stay "unhealthy",
// and Apply fails with ErrUnhealthy; the old replicas and their spec stay as they were and keep serving. The next
// Apply drops the unhealthy replicas.
func (p *Provider) SetHealth(healthy func(schema.Workload) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.healthy = healthy
}

// Validate implements providers.Validator when a validator was set.
func (p *Provider) Validate(w schema.Workload) []providers.Problem {
	p.mu.Lock()
	f := p.validate
	p.mu.Unlock()
	if f == nil {
		return nil
	}
	return f(w)
}

// List returns the owned workloads on target, sorted by name.
func (p *Provider) List(ctx context.Context, owner providers.Owner, target string) ([]providers.Observed, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, Call{Op: "list", Environment: owner.Environment, Target: target})
	var out []providers.Observed
	for k, o := range p.state {
		if k.instance == owner.Instance && k.env == owner.Environment && k.target == target {
			out = append(out, copyObserved(*o))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Workload < out[j].Workload })
	return out, nil
}

func copyObserved(o providers.Observed) providers.Observed {
	o.Replicas = append([]providers.Replica(nil), o.Replicas...)
	o.Missing = slices.Clone(o.Missing)
	o.SecretFingerprints = maps.Clone(o.SecretFingerprints)
	o.Endpoints = slices.Clone(o.Endpoints)
	return o
}

func (p *Provider) enter(k key) {
	p.inFlight++
	if p.inFlight > p.maxFlight {
		p.maxFlight = p.inFlight
	}
	if p.keyBusy[k] {
		p.overlaps++
	}
	p.keyBusy[k] = true
}

func (p *Provider) leave(k key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inFlight--
	delete(p.keyBusy, k)
}

// Apply converges the workload to d at once, unless held (blocks) or a failure was injected.
func (p *Provider) Apply(ctx context.Context, d providers.Desired) error {
	k := key{d.Owner.Instance, d.Owner.Environment, d.Target, d.Workload.Name}
	p.mu.Lock()
	p.enter(k)
	call := Call{Op: "apply", Environment: k.env, Target: k.target, Workload: k.workload, SpecHash: d.SpecHash}
	hold := p.holds[k.workload]
	p.mu.Unlock()
	defer p.leave(k)

	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			p.record(call, ctx.Err())
			return fmt.Errorf("fake: apply %s: %w", k.workload, ctx.Err())
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.fail[k.workload]
	if f == nil || f.n == 0 {
		f = p.fail[""] // faults for any workload
	}
	if f != nil && f.n != 0 {
		if f.n > 0 {
			f.n--
		}
		err := fmt.Errorf("fake: apply %s: %w", k.workload, ErrInjected)
		if f.permanent {
			err = providers.Permanent(err)
		}
		call.Err = err.Error()
		p.calls = append(p.calls, call)
		return err
	}
	w := d.Workload
	if p.healthy != nil && !p.healthy(w) {
		err := fmt.Errorf("fake: apply %s (hash %s): %w; the old ones keep serving", k.workload, d.SpecHash, ErrUnhealthy)
		call.Err = err.Error()
		p.calls = append(p.calls, call)
		p.startUnhealthy(k, d)
		return err
	}
	p.calls = append(p.calls, call)
	o := &providers.Observed{Workload: w.Name, Target: d.Target, SpecHash: d.SpecHash, Spec: providers.Normalize(w)}
	for n, sec := range d.Secrets {
		if o.SecretFingerprints == nil {
			o.SecretFingerprints = map[string]string{}
		}
		o.SecretFingerprints[n] = sec.Fingerprint
	}
	if len(d.Secrets) > 0 {
		p.values[k] = map[string][]byte{}
		for n, sec := range d.Secrets {
			p.values[k][n] = slices.Clone(sec.Value)
		}
	}
	// Ready replicas of the same spec are kept, as a runtime keeps what already runs; the rest are new. A live
	// spec edited by hand (Edit) replaces them all, whatever their hash label says.
	names := map[string]bool{}
	if old := p.state[k]; old != nil && sameRun(old.Spec, o.Spec) && maps.Equal(old.SecretFingerprints, o.SecretFingerprints) {
		for _, r := range old.Replicas {
			if len(o.Replicas) < w.Replicas && r.SpecHash == d.SpecHash && r.Ready() {
				o.Replicas = append(o.Replicas, r)
				names[r.Name] = true
			}
		}
	}
	for i := 0; len(o.Replicas) < w.Replicas; i++ {
		name := fmt.Sprintf("%s-%s-%d", k.env, w.Name, i)
		if names[name] {
			continue
		}
		p.seq++
		r := providers.Replica{ID: fmt.Sprintf("c%06d", p.seq), Name: name,
			SpecHash: d.SpecHash, State: "running", Running: true}
		if w.Health != nil {
			r.Health = "healthy"
		}
		o.Replicas = append(o.Replicas, r)
	}
	for _, port := range w.Ports {
		if port.Public {
			hp := port.HostPort
			if hp == 0 {
				hp = port.Port
			}
			o.Endpoints = append(o.Endpoints, providers.Endpoint{Port: port.Port, Address: fmt.Sprintf("127.0.0.1:%d", hp)})
		}
	}
	p.state[k] = o
	if d.Owner.Preview != 0 {
		l := previewLabels{number: d.Owner.Preview}
		if d.Preview != nil {
			l.head = d.Preview.Head
		}
		p.previews[k] = l
	} else {
		delete(p.previews, k)
	}
	return nil
}

// startUnhealthy adds d's replicas, failing their health check, beside the replicas of other hashes that run.
func (p *Provider) startUnhealthy(k key, d providers.Desired) {
	w := d.Workload
	o := p.state[k]
	if o == nil {
		o = &providers.Observed{Workload: w.Name, Target: d.Target, SpecHash: d.SpecHash, Spec: providers.Normalize(w)}
	}
	kept := o.Replicas[:0:0]
	for _, r := range o.Replicas {
		if r.SpecHash != d.SpecHash {
			kept = append(kept, r)
		}
	}
	for i := range w.Replicas {
		p.seq++
		kept = append(kept, providers.Replica{ID: fmt.Sprintf("c%06d", p.seq), Name: fmt.Sprintf("%s-%s-%s-%d", k.env, w.Name, d.SpecHash, i),
			SpecHash: d.SpecHash, State: "running", Running: true, Health: "unhealthy"})
	}
	o.Replicas = kept
	p.state[k] = o
}

// Environments implements providers.EnvironmentLister: the environments with workloads of instance on target.
func (p *Provider) Environments(ctx context.Context, instance, target string) ([]providers.EnvironmentRef, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, Call{Op: "environments", Target: target})
	by := map[string]providers.EnvironmentRef{}
	for k := range p.state {
		if k.instance != instance || k.target != target {
			continue
		}
		r := by[k.env]
		r.Name = k.env
		if l, ok := p.previews[k]; ok {
			r.Preview = l.number
			if l.head > r.Head {
				r.Head = l.head
			}
		}
		by[k.env] = r
	}
	out := slices.Collect(maps.Values(by))
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// sameRun tells whether replicas of live run what desired asks, the replica count aside.
func sameRun(live, desired schema.Workload) bool {
	live = providers.Normalize(live)
	live.Replicas = desired.Replicas
	return reflect.DeepEqual(live, desired)
}

func (p *Provider) record(c Call, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		c.Err = err.Error()
	}
	p.calls = append(p.calls, c)
}

// Delete removes the workload; deleting what is gone is not an error.
func (p *Provider) Delete(ctx context.Context, owner providers.Owner, target, workload string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k := key{owner.Instance, owner.Environment, target, workload}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.enter(k)
	p.inFlight--
	delete(p.keyBusy, k)
	p.calls = append(p.calls, Call{Op: "delete", Environment: owner.Environment, Target: target, Workload: workload})
	delete(p.state, k)
	delete(p.values, k)
	delete(p.previews, k)
	return nil
}

// Seed puts d into the state as if it had been applied, without recording a call (for benchmarks and setups).
func (p *Provider) Seed(d providers.Desired) {
	p.mu.Lock()
	calls := len(p.calls)
	p.mu.Unlock()
	_ = p.Apply(context.Background(), d)
	p.mu.Lock()
	p.calls = p.calls[:calls]
	p.mu.Unlock()
}

// Hold makes Apply of workload block until release is called (or the caller's context ends).
func (p *Provider) Hold(workload string) (release func()) {
	ch := make(chan struct{})
	p.mu.Lock()
	p.holds[workload] = ch
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			if p.holds[workload] == ch {
				delete(p.holds, workload)
			}
			p.mu.Unlock()
			close(ch)
		})
	}
}

// FailNext makes the next n applies of workload fail (n < 0: every one until cleared with n = 0). The workload ""
// stands for any workload without failures of its own.
func (p *Provider) FailNext(workload string, n int, permanent bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail[workload] = &failure{n: n, permanent: permanent}
}

func (p *Provider) find(workload string) (*providers.Observed, error) {
	var ks []key
	for k := range p.state {
		if k.workload == workload {
			ks = append(ks, k)
		}
	}
	if len(ks) != 1 {
		return nil, fmt.Errorf("fake: %d workloads named %q", len(ks), workload)
	}
	return p.state[ks[0]], nil
}

// Has tells whether some owner runs a workload of that name.
func (p *Provider) Has(workload string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range p.state {
		if k.workload == workload {
			return true
		}
	}
	return false
}

// RemoveReplica deletes replica i of the only workload with that name, as if removed by hand.
func (p *Provider) RemoveReplica(workload string, i int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, err := p.find(workload)
	if err != nil {
		return err
	}
	if i < 0 || i >= len(o.Replicas) {
		return fmt.Errorf("fake: %s has no replica %d", workload, i)
	}
	o.Replicas = append(o.Replicas[:i:i], o.Replicas[i+1:]...)
	return nil
}

// StopReplica marks replica i of the only workload with that name as exited.
func (p *Provider) StopReplica(workload string, i int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, err := p.find(workload)
	if err != nil {
		return err
	}
	if i < 0 || i >= len(o.Replicas) {
		return fmt.Errorf("fake: %s has no replica %d", workload, i)
	}
	o.Replicas[i].State, o.Replicas[i].Running, o.Replicas[i].Health = "exited", false, ""
	return nil
}

// Edit changes the live spec of the only workload with that name behind berth's back, as an operator editing the
// runtime would; the hash labels stay as they were.
func (p *Provider) Edit(workload string, f func(*schema.Workload)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, err := p.find(workload)
	if err != nil {
		return err
	}
	w := o.Spec
	w.Env = maps.Clone(w.Env)
	w.Command = slices.Clone(w.Command)
	w.Args = slices.Clone(w.Args)
	w.Ports = slices.Clone(w.Ports)
	if w.Health != nil {
		h := *w.Health
		w.Health = &h
	}
	f(&w)
	o.Spec = w
	return nil
}

// RemoveObject records a side object of the only workload with that name as deleted by hand (Observed.Missing)
// until the next Apply.
func (p *Provider) RemoveObject(workload, object string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, err := p.find(workload)
	if err != nil {
		return err
	}
	o.Missing = append(o.Missing, object)
	return nil
}

// SecretValue is the value of secret name that the only workload named workload was last given, as its
// containers would see it.
func (p *Provider) SecretValue(workload, name string) ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, vs := range p.values {
		if k.workload == workload {
			v, ok := vs[name]
			return slices.Clone(v), ok
		}
	}
	return nil, false
}

// Calls returns the call log so far and, when reset, empties it.
func (p *Provider) Calls(reset bool) []Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := append([]Call(nil), p.calls...)
	if reset {
		p.calls = nil
	}
	return out
}

// MaxInFlight is the most calls that ran at once.
func (p *Provider) MaxInFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxFlight
}

// Overlaps counts calls that started while another call on the same workload was running.
func (p *Provider) Overlaps() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.overlaps
}

var (
	regOnce   sync.Once
	regMu     sync.Mutex
	instances = map[string]*Provider{}
)

// Register adds the type "fake" to the providers registry (once). Every target of that type gets one shared
// in-memory provider per target name, reachable with Lookup.
func Register() {
	regOnce.Do(func() {
		providers.Register(Type, func(t schema.Target, _ providers.Options) (providers.Provider, error) {
			return Lookup(t.Name), nil
		})
	})
}

// Lookup returns the registered provider for a target name, creating it when needed.
func Lookup(target string) *Provider {
	regMu.Lock()
	defer regMu.Unlock()
	p := instances[target]
	if p == nil {
		p = New()
		instances[target] = p
	}
	return p
}

var (
	_ providers.Provider  = (*Provider)(nil)
	_ providers.Validator = (*Provider)(nil)
)
