package azure

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/registry"
	"github.com/berth-dev/berth/schema"
)

type cg = armcontainerinstance.ContainerGroup

// Apply converges the workload: for each index i < Replicas it makes sure the group of the desired spec exists and
// runs (creating it beside any old group of that index, and deleting the old one only once the new one runs), then
// lists again and deletes every owned group that is not a desired one (surplus indices, old specs the first list
// missed), highest index first.
func (p *Provider) Apply(ctx context.Context, d providers.Desired) error {
	k := wkey{Instance: d.Owner.Instance, Environment: d.Owner.Environment, Target: d.Target, Workload: d.Workload.Name}
	switch {
	case k.Instance == "" || k.Environment == "" || k.Workload == "" || d.SpecHash == "":
		return providers.Permanent(fmt.Errorf("azure: apply needs an owner instance and environment, a workload name and a spec hash"))
	case d.Workload.Replicas < 0:
		return providers.Permanent(fmt.Errorf("azure: workload %s: replicas %d is negative", k.Workload, d.Workload.Replicas))
	}
	log := p.log.With("env", k.Environment, "workload", k.Workload, "spec_hash", d.SpecHash)
	// Secrets first: one that cannot be read fails the step before anything running is touched.
	vals, err := p.resolveSecrets(ctx, d)
	if err != nil {
		return err
	}
	// So is an image whose entrypoint cannot be read, when the args need it.
	var entrypoint []string
	if argsOnly(d.Workload) {
		if err := p.retry(ctx, "image entrypoint", func() (err error) {
			entrypoint, err = p.entrypoint(ctx, d.Workload.Image)
			return err
		}); err != nil {
			return fmt.Errorf("azure: workload %s: %w", k.Workload, err)
		}
	}
	groups, err := p.owned(ctx, k)
	if err != nil {
		return err
	}
	byIndex := map[int][]string{}
	for _, g := range groups {
		i, err := strconv.Atoi(tag(g.Tags, TagReplica))
		if err != nil || i < 0 {
			i = -1
		}
		byIndex[i] = append(byIndex[i], deref(g.Name))
	}
	for i := range d.Workload.Replicas {
		name := GroupName(k.Instance, k.Environment, k.Workload, i, d.SpecHash)
		if err := p.retry(ctx, "replica "+strconv.Itoa(i), func() error { return p.ensure(ctx, k, d, vals, entrypoint, i, name) }); err != nil {
			return fmt.Errorf("azure: workload %s replica %d: %w", k.Workload, i, err)
		}
		for _, old := range byIndex[i] {
			if !strings.EqualFold(old, name) {
				log.InfoContext(ctx, "removing replaced container group", "group", old, "replica", i)
				if err := p.remove(ctx, old); err != nil {
					return err
				}
			}
		}
	}
	// Sweep: a second list catches groups the first one missed (ARM lists are eventually consistent) and removes
	// every owned group that is not one of the desired names; the desired ones run by now.
	want := map[string]bool{}
	for i := range d.Workload.Replicas {
		want[strings.ToLower(GroupName(k.Instance, k.Environment, k.Workload, i, d.SpecHash))] = true
	}
	if groups, err = p.owned(ctx, k); err != nil {
		return err
	}
	byIndex = map[int][]string{}
	for _, g := range groups {
		if want[strings.ToLower(deref(g.Name))] {
			continue
		}
		i, err := strconv.Atoi(tag(g.Tags, TagReplica))
		if err != nil || i < 0 {
			i = -1
		}
		byIndex[i] = append(byIndex[i], deref(g.Name))
	}
	var surplus []int
	for i := range byIndex {
		surplus = append(surplus, i)
	}
	slices.Sort(surplus)
	slices.Reverse(surplus)
	for _, i := range surplus {
		for _, name := range byIndex[i] {
			log.InfoContext(ctx, "removing container group not in the desired set", "group", name, "replica", i)
			if err := p.remove(ctx, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// ensure makes the group of replica i of d exist, run, and carry d's fields.
func (p *Provider) ensure(ctx context.Context, k wkey, d providers.Desired, vals map[string]resolvedSecret, entrypoint []string, i int, name string) error {
	g, err := p.get(ctx, name)
	if err != nil {
		return err
	}
	if g != nil && !k.owns(g.Tags) {
		return providers.Permanent(fmt.Errorf("azure: container group %s exists in resource group %s but is not owned by workload %s of this berth instance; delete or rename it",
			name, p.resourceGroup, k.Workload))
	}
	if g != nil && transitioning(g) {
		// An operation is in flight (ours from a crashed attempt, or someone else's): let it settle, then judge.
		if g, err = p.waitSettled(ctx, name); err != nil {
			return err
		}
	}
	want := groupFor(k, d, vals, entrypoint, i, p.location, p.dnsPx)
	log := p.log.With("env", k.Environment, "workload", k.Workload, "group", name, "replica", i)
	if g != nil {
		_, _, broken := status(g)
		switch how := repair(g, &want); {
		case broken || tag(g.Tags, TagSpecHash) != d.SpecHash:
			log.InfoContext(ctx, "recreating broken container group", "state", deref(g.Properties.ProvisioningState))
			if err := p.deleteGroup(ctx, name); err != nil {
				return err
			}
			g = nil
		case how == recreate:
			log.InfoContext(ctx, "recreating container group changed by hand (its resources, OS, restart policy or IP address type change only by recreating it)")
			if err := p.deleteGroup(ctx, name); err != nil {
				return err
			}
			g = nil
		case how == update:
			log.InfoContext(ctx, "updating container group changed by hand")
			for t, v := range g.Tags { // tags of other tools survive the repair
				if !strings.HasPrefix(strings.ToLower(t), "berth.dev-") {
					want.Tags[t] = v
				}
			}
			if err := p.put(ctx, name, want); err != nil {
				return err
			}
		}
	}
	if g == nil {
		log.InfoContext(ctx, "creating container group")
		if err := p.put(ctx, name, want); err != nil {
			return err
		}
	}
	return p.waitReady(ctx, name)
}

// entrypoint is the entrypoint of image as its registry's configuration gives it (empty when the image has none:
// the args are then the whole command, as docker runs them). An image or tag the registry does not have, refused
// credentials and an unreadable manifest are permanent; the registry's 5xx, 429 and the network are retried.
func (p *Provider) entrypoint(ctx context.Context, image string) ([]string, error) {
	rc := p.Registry
	if rc == nil {
		rc = &registry.Client{}
	}
	img, err := rc.Config(ctx, image)
	if err != nil {
		err = fmt.Errorf("args without command: Azure Container Instances replaces the image's entrypoint with the command, so berth reads the entrypoint from the image's registry to run entrypoint + args: %w", err)
		if registry.Permanent(err) {
			return nil, providers.Permanent(err)
		}
		return nil, err
	}
	p.log.DebugContext(ctx, "read the image's entrypoint", "image", image, "digest", img.Digest, "entrypoint", img.Config.Entrypoint)
	return img.Config.Entrypoint, nil
}

func (p *Provider) put(ctx context.Context, name string, g cg) error {
	poller, err := p.client.BeginCreateOrUpdate(ctx, p.resourceGroup, name, g, nil)
	if err != nil {
		return wrap("create", name, err)
	}
	if _, err := waitPoller(ctx, p, poller); err != nil {
		return wrap("create", name, err)
	}
	return nil
}

// How a group that drifted from the desired one is repaired.
const (
	noRepair = iota // nothing to repair
	update          // PUT the desired group over it
	recreate        // delete it and create it again
)

// repair tells how to bring the live group g to want: nothing, an update in place, or (for what ACI changes only
// by recreating: CPU, memory, OS type, restart policy, IP address type) a delete and create.
func repair(g, want *cg) int {
	w := live(want, readiness)
	same := sameFields(live(g, readiness), w) && sameFields(live(g, liveness), w) && dnsLabelOf(g) == dnsLabelOf(want) &&
		secretTags(g.Tags) == secretTags(want.Tags) // a new Key Vault version of an unpinned reference
	gp, wp := g.Properties, want.Properties
	if gp == nil {
		return recreate
	}
	ipType := func(p *armcontainerinstance.ContainerGroupPropertiesProperties) armcontainerinstance.ContainerGroupIPAddressType {
		if p.IPAddress == nil {
			return ""
		}
		return deref(p.IPAddress.Type)
	}
	switch {
	case deref(gp.OSType) != deref(wp.OSType), deref(gp.RestartPolicy) != deref(wp.RestartPolicy), ipType(gp) != ipType(wp):
		return recreate
	case live(g, readiness).Resources != w.Resources:
		return recreate
	case !same:
		return update
	}
	return noRepair
}

// publicPorts tells whether the group has a Public IP address.
func publicPorts(g *cg) bool {
	return g.Properties != nil && g.Properties.IPAddress != nil &&
		deref(g.Properties.IPAddress.Type) == armcontainerinstance.ContainerGroupIPAddressTypePublic
}

func dnsLabelOf(g *cg) string {
	if g.Properties == nil || g.Properties.IPAddress == nil {
		return ""
	}
	return deref(g.Properties.IPAddress.DNSNameLabel)
}

// waitSettled polls the group until no operation is in flight on it (nil when it is gone).
func (p *Provider) waitSettled(ctx context.Context, name string) (*cg, error) {
	deadline := time.Now().Add(p.ReadyTimeout)
	for {
		g, err := p.get(ctx, name)
		switch {
		case err != nil:
			return nil, err
		case g == nil || !transitioning(g):
			return g, nil
		case time.Now().After(deadline):
			return nil, fmt.Errorf("azure: container group %s still %s after %s", name, deref(g.Properties.ProvisioningState), p.ReadyTimeout)
		}
		if err := providers.Sleep(ctx, p.PollInterval); err != nil {
			return nil, err
		}
	}
}

// waitReady polls the group until it runs, breaks or ReadyTimeout passes.
func (p *Provider) waitReady(ctx context.Context, name string) error {
	deadline := time.Now().Add(p.ReadyTimeout)
	for {
		g, err := p.get(ctx, name)
		switch {
		case err != nil:
			return err
		case g == nil:
			return &notReady{group: name, why: "it was deleted"}
		}
		state, ready, broken := status(g)
		switch {
		case ready:
			return nil
		case broken && !transitioning(g):
			return &notReady{group: name, why: state}
		case time.Now().After(deadline):
			return fmt.Errorf("azure: container group %s not running after %s (state %s)", name, p.ReadyTimeout, state)
		}
		if err := providers.Sleep(ctx, p.PollInterval); err != nil {
			return err
		}
	}
}

// remove deletes a group, retrying transient errors.
func (p *Provider) remove(ctx context.Context, name string) error {
	return p.retry(ctx, "delete "+name, func() error { return p.deleteGroup(ctx, name) })
}

func (p *Provider) deleteGroup(ctx context.Context, name string) error {
	poller, err := p.client.BeginDelete(ctx, p.resourceGroup, name, nil)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return wrap("delete", name, err)
	}
	if _, err := waitPoller(ctx, p, poller); err != nil && !notFound(err) {
		return wrap("delete", name, err)
	}
	return nil
}

// get returns the group, or nil when it does not exist.
func (p *Provider) get(ctx context.Context, name string) (*cg, error) {
	resp, err := p.client.Get(ctx, p.resourceGroup, name, nil)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("get", name, err)
	}
	return &resp.ContainerGroup, nil
}

func notFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// listAll lists the groups of the resource group carrying keep's ownership tags.
func (p *Provider) listAll(ctx context.Context, keep func(tags map[string]*string) bool) ([]*cg, error) {
	var out []*cg
	err := p.retry(ctx, "list", func() error {
		out = out[:0]
		pager := p.client.NewListByResourceGroupPager(p.resourceGroup, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return wrap("list", p.resourceGroup+"/*", err)
			}
			for _, g := range page.Value {
				if g != nil && keep(g.Tags) {
					out = append(out, g)
				}
			}
		}
		return nil
	})
	return out, err
}

func (p *Provider) owned(ctx context.Context, k wkey) ([]*cg, error) {
	return p.listAll(ctx, k.owns)
}

// DefaultListConcurrency bounds the Get calls one List pass runs at once.
const DefaultListConcurrency = 8

// List returns owner's workloads on target, found by tags alone. The resource group's list finds the owned groups
// (ARM list results carry no instance view), then each owned group is read with Get, at most ListConcurrency at
// once, for its instance view and its live fields: one list call per page plus one Get per replica.
func (p *Provider) List(ctx context.Context, owner providers.Owner, target string) ([]providers.Observed, error) {
	listed, err := p.listAll(ctx, func(tags map[string]*string) bool {
		return tag(tags, TagInstance) == owner.Instance && tag(tags, TagEnvironment) == owner.Environment &&
			tag(tags, TagTarget) == target && tag(tags, TagWorkload) != ""
	})
	if err != nil {
		return nil, err
	}
	groups, err := p.getAll(ctx, listed)
	if err != nil {
		return nil, err
	}
	byWorkload := map[string][]*cg{}
	for _, g := range groups {
		w := tag(g.Tags, TagWorkload)
		byWorkload[w] = append(byWorkload[w], g)
	}
	names := make([]string, 0, len(byWorkload))
	for n := range byWorkload {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]providers.Observed, 0, len(names))
	for _, n := range names {
		out = append(out, p.observe(owner, n, target, byWorkload[n]))
	}
	return out, nil
}

// getAll reads each listed group with Get, at most ListConcurrency at once; a group deleted since the list is left
// out. Each Get is retried like every other call.
func (p *Provider) getAll(ctx context.Context, listed []*cg) ([]*cg, error) {
	out := make([]*cg, len(listed))
	errs := make([]error, len(listed))
	sem := make(chan struct{}, max(p.ListConcurrency, 1))
	var wg sync.WaitGroup
	for i, g := range listed {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			name := deref(g.Name)
			errs[i] = p.retry(ctx, "get "+name, func() error {
				var err error
				out[i], err = p.get(ctx, name)
				return err
			})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(out, func(g *cg) bool { return g == nil }), nil
}

func (p *Provider) observe(owner providers.Owner, workload, target string, groups []*cg) providers.Observed {
	slices.SortFunc(groups, func(a, b *cg) int {
		ia, _ := strconv.Atoi(tag(a.Tags, TagReplica))
		ib, _ := strconv.Atoi(tag(b.Tags, TagReplica))
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(deref(a.Name), deref(b.Name))
	})
	o := providers.Observed{Workload: workload, Target: target}
	count := map[string]int{}
	for _, g := range groups {
		hash := tag(g.Tags, TagSpecHash)
		count[hash]++
		state, ready, broken := status(g)
		r := providers.Replica{ID: deref(g.ID), Name: deref(g.Name), SpecHash: hash, State: state, Running: ready}
		if g.Properties != nil && len(g.Properties.Containers) > 0 && g.Properties.Containers[0].Properties != nil &&
			g.Properties.Containers[0].Properties.ReadinessProbe != nil {
			switch {
			case ready:
				r.Health = "healthy"
			case broken:
				r.Health = "unhealthy"
			default:
				r.Health = "starting"
			}
		}
		o.Replicas = append(o.Replicas, r)
		if count[hash] > count[o.SpecHash] || (count[hash] == count[o.SpecHash] && hash < o.SpecHash) {
			o.SpecHash = hash
		}
	}
	// The observed spec is a replica of the majority spec as it runs: the first one whose live fields (either probe)
	// differ from what berth wrote, so that a hand edit of any one replica shows; the first replica when none does.
	var spec schema.Workload
	set, edited := false, false
	for _, g := range groups {
		if tag(g.Tags, TagSpecHash) != o.SpecHash {
			continue
		}
		if i, _ := strconv.Atoi(tag(g.Tags, TagReplica)); p.dnsPx != "" && publicPorts(g) {
			if want := dnsLabel(p.dnsPx, dnsScope(owner), workload, i, o.SpecHash); dnsLabelOf(g) != want {
				o.Missing = append(o.Missing, "DNS name label "+want)
			}
		}
		for _, probe := range []probeKind{readiness, liveness} {
			if edited {
				break
			}
			w := live(g, probe)
			if fingerprint(w) != tag(g.Tags, TagFields) {
				spec, set, edited = w, true, true
			} else if !set {
				spec, set = w, true
			}
		}
	}
	for _, g := range groups {
		if tag(g.Tags, TagSpecHash) == o.SpecHash {
			o.SecretFingerprints = secretFingerprints(g.Tags)
			break
		}
	}
	if set {
		o.Spec = spec
		o.Spec.Provider = target
		o.Spec.Replicas = count[o.SpecHash]
	}
	o.Endpoints = endpoints(o, groups)
	return o
}

// endpoints are where o's public ports answer: for each, the address of the first running group (of the observed
// spec first, in index order) whose Public IP address lists the port, as its FQDN when it has a DNS name label, else
// its IP, with the port (ACI exposes the container port itself). A port is left out until such a group has an
// address. Each replica is a group with an address of its own (ACI has no load balancer): the first one stands for
// the workload.
func endpoints(o providers.Observed, groups []*cg) []providers.Endpoint {
	ordered := slices.Clone(groups) // groups are in index order
	slices.SortStableFunc(ordered, func(a, b *cg) int {
		ma, mb := tag(a.Tags, TagSpecHash) == o.SpecHash, tag(b.Tags, TagSpecHash) == o.SpecHash
		switch {
		case ma == mb:
			return 0
		case ma:
			return -1
		}
		return 1
	})
	var out []providers.Endpoint
	for _, port := range o.Spec.Ports {
		if !port.Public {
			continue
		}
		for _, g := range ordered {
			if _, ready, _ := status(g); !ready {
				continue
			}
			if host := groupAddress(g, port); host != "" {
				out = append(out, providers.Endpoint{Port: port.Port, Address: net.JoinHostPort(host, strconv.Itoa(port.Port))})
				break
			}
		}
	}
	return out
}

// groupAddress is the host a group answers port at: its FQDN when a DNS name label is set, else its IP; "" when
// its Public IP address does not list the port or has no address yet.
func groupAddress(g *cg, port schema.Port) string {
	if !publicPorts(g) {
		return ""
	}
	ip := g.Properties.IPAddress
	listed := slices.ContainsFunc(ip.Ports, func(p *armcontainerinstance.Port) bool {
		if p == nil || p.Port == nil || int(*p.Port) != port.Port {
			return false
		}
		pr := strings.ToLower(string(deref(p.Protocol)))
		return pr == port.Protocol || pr == "" && port.Protocol == "tcp"
	})
	switch {
	case !listed:
		return ""
	case deref(ip.DNSNameLabel) != "" && deref(ip.Fqdn) != "":
		return deref(ip.Fqdn)
	}
	return deref(ip.IP)
}

// Environments implements providers.EnvironmentLister: the environments with groups of instance on target, from one
// list of the resource group read by tags alone. Preview is the berth.dev-preview tag (0 when absent or not a
// positive number), Head the greatest berth.dev-head among the environment's groups.
func (p *Provider) Environments(ctx context.Context, instance, target string) ([]providers.EnvironmentRef, error) {
	listed, err := p.listAll(ctx, func(tags map[string]*string) bool {
		return tag(tags, TagInstance) == instance && tag(tags, TagTarget) == target &&
			tag(tags, TagEnvironment) != "" && tag(tags, TagWorkload) != ""
	})
	if err != nil {
		return nil, err
	}
	by := map[string]providers.EnvironmentRef{}
	for _, g := range listed {
		env := tag(g.Tags, TagEnvironment)
		r := by[env]
		r.Name = env
		if n, err := strconv.Atoi(tag(g.Tags, TagPreview)); err == nil && n > 0 {
			r.Preview = n
		}
		if h := tag(g.Tags, TagHead); h > r.Head {
			r.Head = h
		}
		by[env] = r
	}
	out := make([]providers.EnvironmentRef, 0, len(by))
	for _, r := range by {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b providers.EnvironmentRef) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

var _ providers.EnvironmentLister = (*Provider)(nil)

// Delete removes every group of the workload owned by owner on target.
func (p *Provider) Delete(ctx context.Context, owner providers.Owner, target, workload string) error {
	k := wkey{Instance: owner.Instance, Environment: owner.Environment, Target: target, Workload: workload}
	groups, err := p.owned(ctx, k)
	if err != nil {
		return err
	}
	var errs []error
	for _, g := range groups {
		p.log.InfoContext(ctx, "deleting container group", "env", k.Environment, "workload", workload, "group", deref(g.Name))
		errs = append(errs, p.remove(ctx, deref(g.Name)))
	}
	return errors.Join(errs...)
}

// waitPoller drives a long-running operation at PollInterval, or the server's Retry-After when longer (capped at
// MaxPollDelay).
func waitPoller[T any](ctx context.Context, p *Provider, poller *runtime.Poller[T]) (T, error) {
	delay := p.PollInterval
	for !poller.Done() {
		if err := providers.Sleep(ctx, delay); err != nil {
			var zero T
			return zero, err
		}
		resp, err := poller.Poll(ctx)
		if err != nil {
			var zero T
			return zero, err
		}
		delay = p.PollInterval
		if ra := retryAfter(resp); ra > delay {
			delay = min(ra, p.MaxPollDelay)
		}
	}
	return poller.Result(ctx)
}

// retryAfter reads retry-after-ms, x-ms-retry-after-ms or Retry-After (seconds).
func retryAfter(resp *http.Response) time.Duration {
	if resp == nil {
		return 0
	}
	for _, h := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		if ms, err := strconv.Atoi(resp.Header.Get(h)); err == nil && ms > 0 {
			return time.Duration(ms) * time.Millisecond
		}
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}
