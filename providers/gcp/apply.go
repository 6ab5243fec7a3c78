package gcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	"cloud.google.com/go/auth"
	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	"cloud.google.com/go/compute/metadata"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/protobuf/proto"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// noRetry turns off the SDK's own retries: the provider retries with its own budget and classification.
var noRetry = gax.WithRetry(func() gax.Retryer { return nil })

// Apply implements providers.Provider.
func (p *Provider) Apply(ctx context.Context, d providers.Desired) error {
	w := d.Workload
	switch {
	case w.Name == "" || w.Image == "":
		return providers.Permanent(fmt.Errorf("gcp: workload %q: name and image are required", w.Name))
	case w.Replicas < 0:
		return providers.Permanent(fmt.Errorf("gcp: workload %s: field replicas: %d is negative", w.Name, w.Replicas))
	case d.SpecHash == "":
		return providers.Permanent(fmt.Errorf("gcp: workload %s: no spec hash", w.Name))
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.RolloutTimeout)
		defer cancel()
	}
	log := p.log.With("env", d.Owner.Environment, "workload", w.Name, "revision", d.SpecHash)
	// Secrets first: one that cannot be read fails the step before anything running is touched.
	vals, err := p.resolveSecrets(ctx, d)
	if err != nil {
		return err
	}
	ip, err := p.ensureSides(ctx, log, d)
	if err != nil {
		return err
	}
	tmpl, err := p.ensureTemplate(ctx, d, vals)
	if err != nil {
		return err
	}
	link := fmt.Sprintf("projects/%s/global/instanceTemplates/%s", p.project, tmpl)
	if err := p.ensureGroup(ctx, log, d, link); err != nil {
		return err
	}
	if err := p.ensureLoadBalancer(ctx, log, d, ip); err != nil {
		return err
	}
	if err := p.waitReady(ctx, d, tmpl); err != nil {
		return err
	}
	p.pruneTemplates(ctx, log, d, tmpl)
	if err := p.deleteSides(ctx, d, p.wanted(d)); err != nil { // what the spec no longer needs; the next Apply tries again
		log.Warn("gcp: deleting side objects the workload no longer needs", "err", err)
	}
	return nil
}

// ensureTemplate makes sure a template of the spec exists, is ours and holds what d asks in every managed field;
// it returns its name. Templates are immutable: when the spec's name is taken by a template that differs (the
// target's settings changed, or it was recreated by hand), the variant name of templateNames is used.
func (p *Provider) ensureTemplate(ctx context.Context, d providers.Desired, vals map[string]resolvedSecret) (string, error) {
	var why, absent []string
	check := func(name string, t *computepb.InstanceTemplate) bool {
		if m, ok := parseMarker(t.GetDescription()); !ok || !m.owns(d.Owner, d.Target, d.Workload.Name) {
			why = append(why, name+" exists and is not berth's")
		} else if diff := p.templateDiff(t, p.instanceTemplate(d, vals, name)); diff != "" {
			why = append(why, name+" differs: "+diff)
		} else {
			return true
		}
		return false
	}
	for _, name := range p.templateNames(d.Owner, d.Workload.Name, templateKey(d.SpecHash, vals)) {
		t, err := p.getTemplate(ctx, name)
		switch {
		case err != nil:
			return "", err
		case t == nil:
			absent = append(absent, name)
		case check(name, t):
			return name, nil
		}
	}
	if len(absent) == 0 {
		return "", providers.Permanent(fmt.Errorf("gcp: no instance template for %s: %s", d.Workload.Name, strings.Join(why, "; ")))
	}
	name := absent[0]
	want := p.instanceTemplate(d, vals, name)
	salt := ""
	for try := 0; try < 3; try++ {
		// The id covers what the template holds beyond the spec (the target's settings), so a template made again
		// with other settings is a new request.
		req := &computepb.InsertInstanceTemplateRequest{Project: p.project, InstanceTemplateResource: want,
			RequestId: proto.String(requestID(d, "insert-template", name, p.machineTypeOf(d.Workload), p.network(), p.subnetwork(), salt))}
		var op *compute.Operation
		err := p.call(ctx, "insert instance template "+name, func(ctx context.Context) (err error) {
			op, err = p.templates.Insert(ctx, req, noRetry)
			return err
		})
		if err == nil {
			err = p.waitOp(ctx, op.Proto(), true)
			salt = op.Name() // if the template is still missing, the id was a replay of an older request
		}
		if err != nil && !isReason(err, "alreadyExists") {
			return "", err
		}
		t, err := p.getTemplate(ctx, name)
		if err != nil {
			return "", err
		}
		if t != nil {
			if !check(name, t) {
				return "", providers.Permanent(fmt.Errorf("gcp: instance template %s: %s", name, strings.Join(why, "; ")))
			}
			return name, nil
		}
	}
	return "", fmt.Errorf("gcp: instance template %s did not appear after insert", name)
}

// zonesOf returns the zones new groups spread over: the target's setting, else the region's (read once).
func (p *Provider) zonesOf(ctx context.Context) ([]string, error) {
	p.mu.Lock()
	zs := p.zones
	p.mu.Unlock()
	if len(zs) > 0 {
		return zs, nil
	}
	var r *computepb.Region
	err := p.call(ctx, "get region "+p.region, func(ctx context.Context) (err error) {
		r, err = p.regions.Get(ctx, &computepb.GetRegionRequest{Project: p.project, Region: p.region}, noRetry)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, z := range r.GetZones() {
		zs = append(zs, templateOf(z))
	}
	if len(zs) == 0 {
		return nil, providers.Permanent(fmt.Errorf("gcp: region %s lists no zones", p.region))
	}
	p.mu.Lock()
	p.zones = zs
	p.mu.Unlock()
	return zs, nil
}

// ensureGroup creates the group or brings its version, update policy, description, size and named ports to d, one
// mutation at a time, re-reading after each. What it compares are the group's live fields, not labels or names
// alone: a second version, another template, a changed update policy or named ports are all put back.
func (p *Provider) ensureGroup(ctx context.Context, log *slog.Logger, d providers.Desired, link string) error {
	name := GroupName(d.Owner, d.Workload.Name)
	wantPorts := namedPorts(d.Workload)
	salt := ""
	for try := 0; try < 10; try++ {
		g, err := p.getGroup(ctx, name)
		if err != nil {
			return err
		}
		zones := groupZones(g)
		if g == nil || len(zones) == 0 {
			if zones, err = p.zonesOf(ctx); err != nil {
				return err
			}
		}
		want := p.groupManager(d, link, zones)
		var what string
		var do func(ctx context.Context) (*compute.Operation, error)
		switch {
		case g == nil:
			what = "insert instance group manager " + name
			req := &computepb.InsertRegionInstanceGroupManagerRequest{Project: p.project, Region: p.region,
				InstanceGroupManagerResource: want, RequestId: proto.String(requestID(d, "insert-group", strconv.Itoa(d.Workload.Replicas), salt))}
			do = func(ctx context.Context) (*compute.Operation, error) { return p.groups.Insert(ctx, req, noRetry) }
			log.Info("gcp: creating group", "group", name, "replicas", d.Workload.Replicas, "zones", zones)
		case !p.ownsGroup(g, d.Owner, d.Target, d.Workload.Name):
			return providers.Permanent(fmt.Errorf("gcp: instance group manager %s exists and is not berth's for %s", name, d.Workload.Name))
		case len(g.GetVersions()) > 1 || templateOf(currentVersion(g)) != templateOf(link) ||
			g.GetDescription() != want.GetDescription() || !samePolicy(g.GetUpdatePolicy(), want.GetUpdatePolicy()) ||
			len(want.GetAutoHealingPolicies()) > 0 && !sameAutohealing(g.GetAutoHealingPolicies(), want.GetAutoHealingPolicies()):
			what = "patch instance group manager " + name
			req := &computepb.PatchRegionInstanceGroupManagerRequest{Project: p.project, Region: p.region, InstanceGroupManager: name,
				InstanceGroupManagerResource: &computepb.InstanceGroupManager{Versions: want.Versions, UpdatePolicy: want.UpdatePolicy,
					Description: want.Description, Fingerprint: g.Fingerprint, AutoHealingPolicies: want.AutoHealingPolicies},
				RequestId: proto.String(requestID(d, "patch-group", link, g.GetFingerprint()))}
			do = func(ctx context.Context) (*compute.Operation, error) { return p.groups.Patch(ctx, req, noRetry) }
			log.Info("gcp: rolling out", "group", name, "from", templateOf(currentVersion(g)), "to", templateOf(link))
		case len(want.GetAutoHealingPolicies()) == 0 && len(g.GetAutoHealingPolicies()) > 0:
			log.Info("gcp: removing the autohealing policy", "group", name)
			err := p.clearAutohealing(ctx, d, g)
			if err != nil && !isCode(err, 412) {
				return err
			}
			continue
		case g.GetTargetSize() != int32(d.Workload.Replicas):
			what = "resize instance group manager " + name
			req := &computepb.ResizeRegionInstanceGroupManagerRequest{Project: p.project, Region: p.region, InstanceGroupManager: name,
				Size: int32(d.Workload.Replicas), RequestId: proto.String(requestID(d, "resize-group", strconv.Itoa(d.Workload.Replicas), g.GetFingerprint()))}
			do = func(ctx context.Context) (*compute.Operation, error) { return p.groups.Resize(ctx, req, noRetry) }
			log.Info("gcp: resizing group", "group", name, "from", g.GetTargetSize(), "to", d.Workload.Replicas)
		case !sameNamedPorts(g.GetNamedPorts(), wantPorts):
			what = "set named ports of instance group " + name
			req := &computepb.SetNamedPortsRegionInstanceGroupRequest{Project: p.project, Region: p.region, InstanceGroup: name,
				RegionInstanceGroupsSetNamedPortsRequestResource: &computepb.RegionInstanceGroupsSetNamedPortsRequest{NamedPorts: wantPorts},
				RequestId: proto.String(requestID(d, "set-named-ports", g.GetFingerprint()))}
			do = func(ctx context.Context) (*compute.Operation, error) {
				return p.regionGroups.SetNamedPorts(ctx, req, noRetry)
			}
			log.Info("gcp: setting named ports", "group", name, "ports", len(wantPorts))
		default:
			return nil
		}
		var op *compute.Operation
		err = p.call(ctx, what, func(ctx context.Context) (err error) {
			op, err = do(ctx)
			return err
		})
		if err == nil {
			err = p.waitOp(ctx, op.Proto(), false)
			if g == nil {
				salt = op.Name()
			}
		}
		switch {
		case err == nil, isReason(err, "alreadyExists"), isCode(err, 412):
			// re-read and go on
		default:
			return err
		}
	}
	return fmt.Errorf("gcp: instance group manager %s keeps changing under berth", name)
}

// waitReady polls until the group runs exactly Replicas instances of template tmpl, all RUNNING with no action
// under way.
func (p *Provider) waitReady(ctx context.Context, d providers.Desired, tmpl string) error {
	name := GroupName(d.Owner, d.Workload.Name)
	last := "not read yet"
	// failing is the last look's health-check failure, kept while autohealing recreates the instance, so that a
	// wait ended then still says why the rollout holds.
	failing := ""
	why := func() string {
		if failing != "" && failing != last {
			return last + "; " + failing
		}
		return last
	}
	for {
		g, err := p.getGroup(ctx, name)
		if err != nil {
			return waitErr(ctx, name, why(), err)
		}
		if g == nil {
			return fmt.Errorf("gcp: instance group manager %s disappeared during the rollout", name)
		}
		mis, err := p.managedInstances(ctx, name)
		if err != nil {
			return waitErr(ctx, name, why(), err)
		}
		if last = notReady(g, mis, tmpl, d.Workload.Replicas, len(p.autohealing(d)) > 0); last == "" {
			return nil
		}
		if strings.Contains(last, "fails its health check") {
			failing = last
		}
		if err := providers.Sleep(ctx, p.PollInterval); err != nil {
			return fmt.Errorf("gcp: waiting for %s: %s: %w", name, why(), err)
		}
	}
}

// waitErr is a failed read of waitReady: when the wait itself ended (ctx), it says why the group was not ready at the
// last look, whichever call the end interrupted.
func waitErr(ctx context.Context, name, why string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("gcp: waiting for %s: %s: %w", name, why, err)
	}
	return err
}

// notReady says why the group is not converged ("" when it is).
func notReady(g *computepb.InstanceGroupManager, mis []*computepb.ManagedInstance, tmpl string, n int, healthChecked bool) string {
	if healthChecked { // a rollout held by new instances failing their health check says so first
		for _, mi := range mis {
			if templateOf(mi.GetVersion().GetInstanceTemplate()) == tmpl && instanceHealth(mi, true) == "unhealthy" {
				return fmt.Sprintf("new instance %s fails its health check (the old instances stay until the new ones pass)", mi.GetName())
			}
		}
	}
	if len(mis) != n {
		return fmt.Sprintf("%d instances, want %d", len(mis), n)
	}
	for _, mi := range mis {
		switch {
		case templateOf(mi.GetVersion().GetInstanceTemplate()) != tmpl:
			return fmt.Sprintf("instance %s runs template %s", mi.GetName(), templateOf(mi.GetVersion().GetInstanceTemplate()))
		case mi.GetInstanceStatus() != "RUNNING" || mi.GetCurrentAction() != "NONE":
			return fmt.Sprintf("instance %s is %s/%s", mi.GetName(), mi.GetInstanceStatus(), mi.GetCurrentAction())
		case healthChecked && instanceHealth(mi, true) != "healthy":
			return fmt.Sprintf("instance %s is %s by its health check", mi.GetName(), instanceHealth(mi, true))
		}
	}
	if !g.GetStatus().GetIsStable() {
		return "group not stable"
	}
	return ""
}

// pruneTemplates deletes the workload's templates other than keep; failures are only logged (the next Apply or
// Delete tries again).
func (p *Provider) pruneTemplates(ctx context.Context, log *slog.Logger, d providers.Desired, keep string) {
	ts, err := p.ownedTemplates(ctx, d.Owner, d.Target, d.Workload.Name)
	if err != nil {
		log.Warn("gcp: listing old templates", "err", err)
		return
	}
	for _, t := range ts {
		if t.GetName() == keep {
			continue
		}
		if err := p.deleteTemplate(ctx, d, t); err != nil {
			log.Warn("gcp: deleting old template", "template", t.GetName(), "err", err)
		}
	}
}

// List implements providers.Provider. One pass reads the groups, the owner's templates (one list by name prefix)
// and each group's managed instances; a template found neither in that list nor in the cache (one made by hand) is
// read once by its selfLink and kept, as templates are immutable.
func (p *Provider) List(ctx context.Context, owner providers.Owner, target string) ([]providers.Observed, error) {
	groups, err := p.listGroups(ctx)
	if err != nil {
		return nil, err
	}
	var mine []*computepb.InstanceGroupManager
	var marks []marker
	for _, g := range groups {
		m, ok := parseMarker(g.GetDescription())
		if !ok || !m.owns(owner, target, "") || g.GetName() != GroupName(owner, m.Workload) {
			continue
		}
		mine, marks = append(mine, g), append(marks, m)
	}
	if len(mine) == 0 {
		return nil, nil
	}
	ts, err := p.listTemplates(ctx, groupPrefix(owner))
	if err != nil {
		return nil, err
	}
	var out []providers.Observed
	addrs := &sides{p: p, owner: owner}
	for i, g := range mine {
		o, err := p.observe(ctx, owner, g, marks[i], ts, addrs)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Workload < out[j].Workload })
	return out, nil
}

// listGroups lists the region's instance group managers (one call per page).
func (p *Provider) listGroups(ctx context.Context) ([]*computepb.InstanceGroupManager, error) {
	var groups []*computepb.InstanceGroupManager
	err := p.call(ctx, "list instance group managers", func(ctx context.Context) error {
		groups = groups[:0]
		it := p.groups.List(ctx, &computepb.ListRegionInstanceGroupManagersRequest{Project: p.project, Region: p.region}, noRetry)
		for {
			g, err := it.Next()
			if errors.Is(err, iterator.Done) {
				return nil
			}
			if err != nil {
				return err
			}
			groups = append(groups, g)
		}
	})
	return groups, err
}

// Environments implements providers.EnvironmentLister: the environments with groups of instance on target, from
// one list of the region's groups read by their description markers alone (instance group managers have no labels
// in Compute v1; the group, not its instances, is what exists of a workload, even at zero replicas). Preview is
// the marker's preview number (0 when absent or malformed), Head the greatest head among the environment's groups.
func (p *Provider) Environments(ctx context.Context, instance, target string) ([]providers.EnvironmentRef, error) {
	groups, err := p.listGroups(ctx)
	if err != nil {
		return nil, err
	}
	by := map[string]providers.EnvironmentRef{}
	for _, g := range groups {
		m, ok := parseMarker(g.GetDescription())
		if !ok || m.Instance != instance || m.Target != target ||
			g.GetName() != GroupName(providers.Owner{Instance: m.Instance, Environment: m.Env}, m.Workload) {
			continue
		}
		r := by[m.Env]
		r.Name = m.Env
		if m.Preview != 0 {
			r.Preview = m.Preview
		}
		if m.Head > r.Head {
			r.Head = m.Head
		}
		by[m.Env] = r
	}
	out := make([]providers.EnvironmentRef, 0, len(by))
	for _, r := range by {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// listTemplates lists the templates whose names start with prefix, by selfLink.
func (p *Provider) listTemplates(ctx context.Context, prefix string) (map[string]*computepb.InstanceTemplate, error) {
	out := map[string]*computepb.InstanceTemplate{}
	err := p.call(ctx, "list instance templates", func(ctx context.Context) error {
		clear(out)
		it := p.templates.List(ctx, &computepb.ListInstanceTemplatesRequest{Project: p.project,
			Filter: proto.String(fmt.Sprintf("name eq %s.*", prefix))}, noRetry)
		for {
			t, err := it.Next()
			if errors.Is(err, iterator.Done) {
				return nil
			}
			if err != nil {
				return err
			}
			if strings.HasPrefix(t.GetName(), prefix) {
				out[templateOf(t.GetName())] = t
			}
		}
	})
	return out, err
}

// maxSeen bounds the cache of templates made by hand.
const maxSeen = 256

// template returns the template ref names: from this pass's list ts of the templates named with prefix, else the
// cache, else read (and cached when the list cannot show it). A template that does not exist is nil.
func (p *Provider) template(ctx context.Context, ts map[string]*computepb.InstanceTemplate, prefix, ref string) (*computepb.InstanceTemplate, error) {
	name := templateOf(ref)
	if t := ts[name]; t != nil {
		return t, nil
	}
	p.mu.Lock()
	t := p.seen[name]
	p.mu.Unlock()
	if t != nil {
		return t, nil
	}
	t, err := p.getTemplate(ctx, name)
	if err != nil || t == nil {
		return nil, err
	}
	ts[name] = t
	if !strings.HasPrefix(name, prefix) { // berth's own are listed on every pass: a deletion shows at once
		p.mu.Lock()
		if len(p.seen) >= maxSeen { // a bound, not an eviction policy: hand-made templates are few
			clear(p.seen)
		}
		p.seen[name] = t
		p.mu.Unlock()
	}
	return t, nil
}

// observe reads one group back from its live objects: the spec from the group's current template (the one it
// really uses) and the group itself, the replicas from its managed instances. A replica's spec hash is the
// spec-hash label of its template when that template holds the target's settings, else empty (a template berth
// would not run). Missing is the spec's template when the group no longer runs it and it is gone.
func (p *Provider) observe(ctx context.Context, owner providers.Owner, g *computepb.InstanceGroupManager, m marker, ts map[string]*computepb.InstanceTemplate, addrs *sides) (providers.Observed, error) {
	o := providers.Observed{Workload: m.Workload, Target: m.Target}
	cur, err := p.template(ctx, ts, groupPrefix(owner), currentVersion(g))
	if err != nil {
		return o, err
	}
	o.Spec = liveSpec(m.Workload, g, cur)
	if cur != nil {
		if sm, ok := secretsOf(cur); ok {
			o.SecretFingerprints = p.observedFingerprints(ctx, sm)
		}
	}
	names := p.templateNames(owner, m.Workload, m.Spec)
	// A template named by the spec hash folded with Secret Manager versions (templateKey) is the spec's too.
	keyed := false
	if sm, ok := secretsOf(cur); ok && specLabel(cur) == m.Spec {
		vals := map[string]resolvedSecret{}
		for n, s := range sm.Secrets {
			vals[n] = resolvedSecret{version: s.Version}
		}
		keyed = slices.Contains(p.templateNames(owner, m.Workload, templateKey(m.Spec, vals)), cur.GetName())
	}
	if cur == nil || !slices.Contains(names, cur.GetName()) && !keyed {
		found := false
		for _, n := range names {
			if ts[n] != nil {
				found = true
				break
			}
		}
		if !found { // not in the list: gone, or too new for the list to show
			t, err := p.getTemplate(ctx, names[0])
			if err != nil {
				return o, err
			}
			if found = t != nil; !found {
				if t, err = p.getTemplate(ctx, names[1]); err != nil {
					return o, err
				}
				found = t != nil
			}
		}
		if !found {
			o.Missing = append(o.Missing, "instance template "+names[0])
		}
	}
	mis, err := p.managedInstances(ctx, g.GetName())
	if err != nil {
		return o, err
	}
	counts := map[string]int{}
	for _, mi := range mis {
		t, err := p.template(ctx, ts, groupPrefix(owner), mi.GetVersion().GetInstanceTemplate())
		if err != nil {
			return o, err
		}
		hash := ""
		if t != nil && p.settingsDiff(t, p.machineType) == "" {
			hash = specLabel(t)
		}
		state := strings.ToLower(mi.GetInstanceStatus())
		if a := mi.GetCurrentAction(); a != "" && a != "NONE" {
			state = strings.ToLower(a)
		}
		r := providers.Replica{ID: strconv.FormatUint(mi.GetId(), 10), Name: mi.GetName(), SpecHash: hash, State: state,
			Running: mi.GetInstanceStatus() == "RUNNING" && (mi.GetCurrentAction() == "NONE" || mi.GetCurrentAction() == ""),
			Health:  instanceHealth(mi, len(g.GetAutoHealingPolicies()) > 0)}
		if r.Name == "" {
			r.Name = templateOf(mi.GetInstance())
		}
		counts[hash]++
		o.Replicas = append(o.Replicas, r)
	}
	o.SpecHash = m.Spec
	for h, c := range counts {
		if c > counts[o.SpecHash] || c == counts[o.SpecHash] && h < o.SpecHash && o.SpecHash != m.Spec {
			o.SpecHash = h
		}
	}
	if err := addrs.readSides(ctx, g, &o, cur != nil && public(cur)); err != nil {
		return o, err
	}
	return o, nil
}

// Delete implements providers.Provider.
func (p *Provider) Delete(ctx context.Context, owner providers.Owner, target, workload string) error {
	d := providers.Desired{Owner: owner, Target: target, Workload: schema.Workload{Name: workload}}
	name := GroupName(owner, workload)
	g, err := p.getGroup(ctx, name)
	if err != nil {
		return err
	}
	// The load balancer first: a backend service holds the group's instance group.
	lbOnly := func(kind, _ string) bool { return kind != "forwarding rule" && kind != "backend service" }
	if err := p.deleteSides(ctx, d, lbOnly); err != nil {
		return err
	}
	if g != nil && p.ownsGroup(g, owner, target, workload) {
		p.log.Info("gcp: deleting group", "env", owner.Environment, "workload", workload, "group", name)
		var op *compute.Operation
		err := p.call(ctx, "delete instance group manager "+name, func(ctx context.Context) (err error) {
			op, err = p.groups.Delete(ctx, &computepb.DeleteRegionInstanceGroupManagerRequest{Project: p.project, Region: p.region,
				InstanceGroupManager: name, RequestId: proto.String(requestID(d, "delete-group", strconv.FormatUint(g.GetId(), 10)))}, noRetry)
			return err
		})
		if err == nil {
			err = p.waitOp(ctx, op.Proto(), false)
		}
		if err != nil && !isCode(err, 404) {
			return err
		}
	}
	ts, err := p.ownedTemplates(ctx, owner, target, workload)
	if err != nil {
		return err
	}
	if g != nil && p.ownsGroup(g, owner, target, workload) { // a just-made template may be missing from the list
		if t, err := p.getTemplate(ctx, templateOf(currentVersion(g))); err != nil {
			return err
		} else if t != nil && !containsTemplate(ts, t.GetName()) {
			ts = append(ts, t)
		}
	}
	for _, t := range ts {
		if err := p.deleteTemplate(ctx, d, t); err != nil {
			return err
		}
	}
	return p.deleteSides(ctx, d, nil)
}

func containsTemplate(ts []*computepb.InstanceTemplate, name string) bool {
	for _, t := range ts {
		if t.GetName() == name {
			return true
		}
	}
	return false
}

func (p *Provider) deleteTemplate(ctx context.Context, d providers.Desired, t *computepb.InstanceTemplate) error {
	var op *compute.Operation
	err := p.call(ctx, "delete instance template "+t.GetName(), func(ctx context.Context) (err error) {
		op, err = p.templates.Delete(ctx, &computepb.DeleteInstanceTemplateRequest{Project: p.project, InstanceTemplate: t.GetName(),
			RequestId: proto.String(requestID(d, "delete-template", t.GetName(), strconv.FormatUint(t.GetId(), 10)))}, noRetry)
		return err
	})
	if err == nil {
		err = p.waitOp(ctx, op.Proto(), true)
	}
	if err != nil && !isCode(err, 404) {
		return err
	}
	return nil
}

// ownedTemplates lists the templates of one workload of owner (by name prefix and description marker).
func (p *Provider) ownedTemplates(ctx context.Context, owner providers.Owner, target, workload string) ([]*computepb.InstanceTemplate, error) {
	prefix := GroupName(owner, workload) + "-"
	var out []*computepb.InstanceTemplate
	err := p.call(ctx, "list instance templates", func(ctx context.Context) error {
		out = out[:0]
		it := p.templates.List(ctx, &computepb.ListInstanceTemplatesRequest{Project: p.project,
			Filter: proto.String(fmt.Sprintf("name eq %s.*", prefix))}, noRetry)
		for {
			t, err := it.Next()
			if errors.Is(err, iterator.Done) {
				return nil
			}
			if err != nil {
				return err
			}
			if m, ok := parseMarker(t.GetDescription()); ok && strings.HasPrefix(t.GetName(), prefix) && m.owns(owner, target, workload) {
				out = append(out, t)
			}
		}
	})
	return out, err
}

func (p *Provider) ownsGroup(g *computepb.InstanceGroupManager, owner providers.Owner, target, workload string) bool {
	m, ok := parseMarker(g.GetDescription())
	return ok && m.owns(owner, target, workload) && g.GetName() == GroupName(owner, workload)
}

func currentVersion(g *computepb.InstanceGroupManager) string {
	if vs := g.GetVersions(); len(vs) > 0 {
		return vs[0].GetInstanceTemplate()
	}
	return g.GetInstanceTemplate()
}

// getGroup returns the named group, or nil when it does not exist.
func (p *Provider) getGroup(ctx context.Context, name string) (*computepb.InstanceGroupManager, error) {
	var g *computepb.InstanceGroupManager
	err := p.call(ctx, "get instance group manager "+name, func(ctx context.Context) (err error) {
		g, err = p.groups.Get(ctx, &computepb.GetRegionInstanceGroupManagerRequest{Project: p.project, Region: p.region, InstanceGroupManager: name}, noRetry)
		return err
	})
	if isCode(err, 404) {
		return nil, nil
	}
	return g, err
}

// getTemplate returns the named template, or nil when it does not exist.
func (p *Provider) getTemplate(ctx context.Context, name string) (*computepb.InstanceTemplate, error) {
	var t *computepb.InstanceTemplate
	err := p.call(ctx, "get instance template "+name, func(ctx context.Context) (err error) {
		t, err = p.templates.Get(ctx, &computepb.GetInstanceTemplateRequest{Project: p.project, InstanceTemplate: name}, noRetry)
		return err
	})
	if isCode(err, 404) {
		return nil, nil
	}
	return t, err
}

func (p *Provider) managedInstances(ctx context.Context, group string) ([]*computepb.ManagedInstance, error) {
	var out []*computepb.ManagedInstance
	err := p.call(ctx, "list managed instances of "+group, func(ctx context.Context) error {
		out = out[:0]
		it := p.groups.ListManagedInstances(ctx, &computepb.ListManagedInstancesRegionInstanceGroupManagersRequest{
			Project: p.project, Region: p.region, InstanceGroupManager: group}, noRetry)
		for {
			mi, err := it.Next()
			if errors.Is(err, iterator.Done) {
				return nil
			}
			if err != nil {
				return err
			}
			out = append(out, mi)
		}
	})
	if isCode(err, 404) {
		return nil, nil
	}
	return out, err
}

// waitOp polls an operation (the SDK's Wait sleeps at least a second per poll) until DONE; an operation that ends
// in error returns it as a *googleapi.Error, classified like a call's.
func (p *Provider) waitOp(ctx context.Context, op *computepb.Operation, global bool) error {
	for op.GetStatus() != computepb.Operation_DONE {
		if err := providers.Sleep(ctx, p.PollInterval); err != nil {
			return fmt.Errorf("gcp: waiting for operation %s on %s: %w", op.GetName(), templateOf(op.GetTargetLink()), err)
		}
		name := op.GetName()
		err := p.call(ctx, "get operation "+name, func(ctx context.Context) (err error) {
			if global {
				op, err = p.globalOps.Get(ctx, &computepb.GetGlobalOperationRequest{Project: p.project, Operation: name}, noRetry)
			} else {
				op, err = p.regionOps.Get(ctx, &computepb.GetRegionOperationRequest{Project: p.project, Region: p.region, Operation: name}, noRetry)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	if errs := op.GetError().GetErrors(); len(errs) > 0 {
		ge := &googleapi.Error{Code: int(op.GetHttpErrorStatusCode()), Message: errs[0].GetMessage()}
		for _, e := range errs {
			ge.Errors = append(ge.Errors, googleapi.ErrorItem{Reason: reasonOf(e.GetCode()), Message: e.GetMessage()})
		}
		err := fmt.Errorf("gcp: operation %s %s on %s failed: %w", op.GetName(), op.GetOperationType(), templateOf(op.GetTargetLink()), ge)
		if !retryable(ge) && !isReason(ge, "alreadyExists") {
			return providers.Permanent(err)
		}
		return err
	}
	return nil
}

// reasonOf maps an operation error code (RESOURCE_ALREADY_EXISTS, ALREADY_EXISTS, RESOURCE_NOT_READY) to the
// reason spelling of synchronous errors (alreadyExists, resourceNotReady).
func reasonOf(code string) string {
	code = strings.TrimPrefix(code, "RESOURCE_")
	if code == "NOT_READY" {
		code = "RESOURCE_NOT_READY"
	}
	parts := strings.Split(strings.ToLower(code), "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// call runs one API call, retrying retryable errors with capped exponential backoff and jitter within
// RetryAttempts. Not found, already exists and a failed precondition come back as they are (the callers decide);
// other non-retryable errors come back marked permanent, refused credentials and denied permissions with the fix
// (explain).
func (p *Provider) call(ctx context.Context, what string, f func(ctx context.Context) error) error {
	r := providers.Retry{Base: p.RetryBase, Max: p.RetryMax, Attempts: p.RetryAttempts, Logger: p.log,
		Classify: func(err error) providers.Class {
			switch {
			case isCode(err, 404), isReason(err, "alreadyExists"), isCode(err, 412):
				return providers.Final
			case retryable(err):
				return providers.Transient
			}
			return providers.Invalid
		}}
	err := r.Do(ctx, "gcp: "+what, f)
	if !errors.Is(err, providers.ErrPermanent) {
		return err
	}
	if e := p.explain(err); e != err {
		return providers.Permanent(e)
	}
	return err
}

// retryable tells whether an error is worth another try: throttling (429, 403 rateLimitExceeded), 5xx, conflicts
// and not-ready resources, network failures and timeouts.
func retryable(err error) bool {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch {
		case ge.Code == 429, ge.Code >= 500:
			return true
		case ge.Code == 409:
			return !hasReason(ge, "alreadyExists")
		case ge.Code == 403:
			return hasReason(ge, "rateLimitExceeded") || hasReason(ge, "userRateLimitExceeded") || hasReason(ge, "quotaExceeded")
		case ge.Code == 400:
			return hasReason(ge, "resourceNotReady")
		}
		return false
	}
	var ae *auth.Error
	if errors.As(err, &ae) { // the token endpoint refused the credentials, or failed
		return ae.Temporary()
	}
	var nd metadata.NotDefinedError
	if errors.As(err, &nd) { // the metadata server has no token: the VM has no service account
		return false
	}
	var me *metadata.Error
	if errors.As(err, &me) { // the metadata server answered otherwise
		return me.Code == 429 || me.Code >= 500
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// Transport failures of the HTTP client (connection refused or reset) carry no API error.
	return !errors.Is(err, context.Canceled)
}

func hasReason(ge *googleapi.Error, reason string) bool {
	for _, e := range ge.Errors {
		if e.Reason == reason {
			return true
		}
	}
	return false
}

func isReason(err error, reason string) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && hasReason(ge, reason)
}

func isCode(err error, code int) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == code
}
