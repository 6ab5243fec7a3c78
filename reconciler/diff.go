package reconciler

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/schema"
)

// planInput is everything computePlan needs; computePlan itself does no I/O.
type planInput struct {
	env      string
	revision string
	desired  []schema.Workload
	// observed lists what every target reported for the environment.
	observed []providers.Observed
	problems []Problem
	// normalize gives, per target, the form in which that target reads a workload back (see
	// providers.Normalizer); targets without one use providers.Normalize alone.
	normalize map[string]func(schema.Workload) schema.Workload
	// secrets are the resolved secrets of each desired workload that uses any, by workload; secretErrs the
	// workloads whose secrets could not be resolved (their step fails, nothing of theirs is touched).
	secrets    map[string]map[string]providers.Secret
	secretErrs map[string]error
	// images are the pinned images of the desired workloads whose registry is declared (desired already runs
	// them); imageErrs the workloads whose image could not be pinned (their step fails, nothing of theirs is
	// touched).
	images         map[string]PinnedImage
	imageErrs      map[string]error
	maxDeleteShare float64
	allowPruneAll  bool
	// routes are what the stable names of each desired workload with endpoints serve now, by workload.
	routes map[string][]route
	// held says why a move of w to target must wait (it was aborted for this very spec), "" when it need not;
	// nil for none.
	held func(w schema.Workload, target, hash string) string
}

// readBack is the form in which target would read w back: the generic normalisation, then the target's own.
func (in planInput) readBack(target string, w schema.Workload) schema.Workload {
	w = providers.Normalize(w)
	if f := in.normalize[target]; f != nil {
		w = providers.Normalize(f(w))
	}
	return w
}

// computePlan diffs desired against observed. Steps come in a fixed order: creates, updates and migrations by
// workload name, then deletes by workload and target.
func computePlan(in planInput) *Plan {
	p := &Plan{Environment: in.env, Revision: in.revision, Problems: in.problems, Steps: []Step{},
		observed: map[string][]providers.Observed{}, hashes: map[string]string{}, routes: in.routes}
	for _, o := range in.observed {
		p.observed[o.Workload] = append(p.observed[o.Workload], o)
	}
	for _, os := range p.observed {
		sort.Slice(os, func(i, j int) bool { return os[i].Target < os[j].Target })
	}
	desired := append([]schema.Workload(nil), in.desired...)
	sort.Slice(desired, func(i, j int) bool { return desired[i].Name < desired[j].Name })
	wanted := map[string]bool{}
	var deletes []Step
	for _, w := range desired {
		wanted[w.Name] = true
		if err := in.imageErrs[w.Name]; err != nil {
			// Nothing of the workload is touched; the plan's problem says why, at the image.
			p.Steps = append(p.Steps, Step{Action: ActionUpdate, Workload: w.Name, Target: w.Provider,
				Reason: "image cannot be resolved", Error: err.Error()})
			continue
		}
		if err := in.secretErrs[w.Name]; err != nil {
			// Nothing of the workload is touched; the step fails and says why.
			p.Steps = append(p.Steps, Step{Action: ActionUpdate, Workload: w.Name, Target: w.Provider,
				Reason: "secrets cannot be resolved", Error: err.Error()})
			continue
		}
		hash := providers.DesiredHash(w, in.secrets[w.Name])
		p.hashes[w.Name] = hash
		if pi, ok := in.images[w.Name]; ok {
			p.Images = append(p.Images, pi)
		}
		first := len(p.Steps)
		var here *providers.Observed
		var elsewhere []providers.Observed
		for i, o := range p.observed[w.Name] {
			if o.Target == w.Provider {
				here = &p.observed[w.Name][i]
			} else {
				elsewhere = append(elsewhere, o)
			}
		}
		named := len(w.Endpoints()) > 0
		switch {
		case (here == nil || named) && len(elsewhere) > 0:
			// A move. With stable names every other copy leaves with it, once the names no longer send
			// clients there; without, the first one migrates and the others are deleted.
			from := elsewhere[0]
			st := Step{Action: ActionMigrate, Workload: w.Name, Target: w.Provider, FromTarget: from.Target,
				Reason: "target changed", SpecHash: hash}
			if here != nil {
				st.Reason = "migration in progress"
				st.Changes = diffSpec(providers.Normalize(here.Spec), in.readBack(w.Provider, w))
			} else {
				st.Changes = append([]Change{{Path: "provider", Old: from.Target, New: w.Provider}},
					diffSpec(providers.Normalize(from.Spec), in.readBack(w.Provider, w))...)
			}
			if named {
				for _, o := range elsewhere {
					st.Leaving = append(st.Leaving, o.Target)
				}
				elsewhere = nil
			} else {
				st.Leaving = []string{from.Target}
				elsewhere = elsewhere[1:]
			}
			st.Phases, st.Expected = movePhases(w, w.Provider, st.Leaving, in.routes[w.Name])
			if why := moveSafety(w); why != "" {
				st.Error = "migration refused: " + why
			} else if in.held != nil {
				st.Error = in.held(w, w.Provider, hash)
			}
			p.Steps = append(p.Steps, st)
		case here == nil:
			st := Step{Action: ActionCreate, Workload: w.Name, Target: w.Provider, Reason: "not running", SpecHash: hash}
			for _, rt := range in.routes[w.Name] {
				st.Changes = append(st.Changes, Change{Path: "endpoint " + rt.Endpoint.Name, Old: describeRecord(rt.Record),
					New: w.Provider + "=100"})
			}
			p.Steps = append(p.Steps, st)
		default:
			// The live fields are compared on every pass, not only when the hash labels differ: a hand edit keeps
			// the labels berth wrote.
			ch := append(diffSpec(providers.Normalize(here.Spec), in.readBack(w.Provider, w)), missing(*here)...)
			ch = append(ch, secretChanges(*here, w, in.secrets[w.Name])...)
			changed := map[string]bool{}
			for _, c := range ch {
				changed[c.Path] = true
			}
			for _, k := range here.Kept {
				if changed[k.Path] {
					continue // declared now: the apply takes it over, as the change says
				}
				p.Kept = append(p.Kept, KeptValue{Workload: w.Name, Target: w.Provider, Path: k.Path, Reason: k.Reason})
			}
			if here.SpecHash != hash {
				p.Steps = append(p.Steps, Step{Action: ActionUpdate, Workload: w.Name, Target: w.Provider,
					Reason: "spec changed", SpecHash: hash, Changes: ch})
				break
			}
			var ds []string
			if n := len(ch) - len(here.Missing); n > 0 {
				ds = append(ds, plural(n, "field changed on the runtime", "fields changed on the runtime"))
			}
			if n := len(here.Missing); n > 0 {
				ds = append(ds, plural(n, "object missing", "objects missing"))
			}
			if d := drift(*here, w.Replicas, hash); d != "" {
				ds = append(ds, d)
			}
			// The stable names serve this copy alone, at the addresses it reports.
			for _, rt := range in.routes[w.Name] {
				want, ok := memberOf(*here, rt, endpoint.MaxWeight)
				if !ok {
					continue
				}
				if rt.Record == nil || len(rt.Record.Members) != 1 || !sameMember(rt.Record.Members[0], want) || rt.Record.TTL != rt.Endpoint.TTL.D() && !rt.Edge {
					ch = append(ch, Change{Path: "endpoint " + rt.Endpoint.Name, Old: describeRecord(rt.Record), New: describeMember(want)})
					ds = append(ds, "endpoint "+rt.Endpoint.Name+" serves "+describeRecord(rt.Record))
				}
			}
			if len(ds) > 0 {
				p.Steps = append(p.Steps, Step{Action: ActionUpdate, Workload: w.Name, Target: w.Provider,
					Reason: "drift: " + strings.Join(ds, ", "), SpecHash: hash, Changes: ch})
			}
		}
		if pi, ok := in.images[w.Name]; ok {
			for i := first; i < len(p.Steps); i++ {
				p.Steps[i].Image = pi.Pinned
			}
		}
		for _, o := range elsewhere {
			deletes = append(deletes, Step{Action: ActionDelete, Workload: w.Name, Target: o.Target,
				Reason: "left over on another target"})
		}
	}
	names := make([]string, 0, len(p.observed))
	for n := range p.observed {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if wanted[n] {
			continue
		}
		for _, o := range p.observed[n] {
			deletes = append(deletes, Step{Action: ActionDelete, Workload: n, Target: o.Target,
				Reason: "no longer declared"})
		}
	}
	p.Steps = append(p.Steps, deletes...)
	p.Refused = pruneRefusal(len(in.observed), len(deletes), in.maxDeleteShare, in.allowPruneAll)
	return p
}

// secretChanges lists the secrets of w whose fingerprint on the runtime is not the desired one: a rotated value
// (or a changed reference), never shown.
func secretChanges(o providers.Observed, w schema.Workload, secrets map[string]providers.Secret) []Change {
	var cs []Change
	for _, n := range w.Secrets() {
		have, ok := o.SecretFingerprints[n]
		switch want := secrets[n].Fingerprint; {
		case !ok:
			cs = append(cs, Change{Path: "secret " + n, Old: "(none)", New: "(sensitive)"})
		case have != want:
			cs = append(cs, Change{Path: "secret " + n, Old: "(sensitive)", New: "(sensitive value changed)"})
		}
	}
	return cs
}

// missing lists o's missing side objects as changes that Apply makes.
func missing(o providers.Observed) []Change {
	cs := make([]Change, 0, len(o.Missing))
	for _, m := range o.Missing {
		cs = append(cs, Change{Path: "object " + m, Old: "(missing)", New: "(recreated)"})
	}
	return cs
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// pruneRefusal applies the prune safety: deleting every observed workload, or more than share of them, is refused
// unless allowed.
func pruneRefusal(observed, deletes int, share float64, allow bool) string {
	if allow || deletes == 0 || observed == 0 {
		return ""
	}
	if deletes == observed {
		return fmt.Sprintf("prune refused: the plan deletes every running workload of the environment (%d); allow it explicitly (--allow-prune-all) or use destroy", deletes)
	}
	if float64(deletes) > share*float64(observed) {
		return fmt.Sprintf("prune refused: the plan deletes %d of %d running workloads, more than the allowed share %.0f%%; allow it explicitly (--allow-prune-all)",
			deletes, observed, share*100)
	}
	return ""
}

// drift describes how the replicas of an up-to-date workload differ from what is desired, "" when they do not.
func drift(o providers.Observed, want int, hash string) string {
	var notRunning, notReady, otherSpec int
	for _, r := range o.Replicas {
		switch {
		case r.SpecHash != hash:
			otherSpec++
		case !r.Running:
			notRunning++
		case !r.Ready():
			notReady++
		}
	}
	var ds []string
	if n := len(o.Replicas); n < want {
		ds = append(ds, fmt.Sprintf("%d of %d replicas missing", want-n, want))
	} else if n > want {
		ds = append(ds, fmt.Sprintf("%d extra replicas", n-want))
	}
	if notRunning > 0 {
		ds = append(ds, fmt.Sprintf("%d of %d replicas not running", notRunning, want))
	}
	if notReady > 0 {
		ds = append(ds, fmt.Sprintf("%d of %d replicas not ready", notReady, want))
	}
	if otherSpec > 0 {
		ds = append(ds, fmt.Sprintf("%d replicas of another spec", otherSpec))
	}
	return strings.Join(ds, ", ")
}

// sensitive tells whether an environment variable's value must not be shown.
func sensitive(name string) bool {
	n := strings.ToUpper(name)
	for _, s := range []string{"SECRET", "PASSWORD", "PASSWD", "TOKEN", "KEY", "CREDENTIAL", "PRIVATE"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// diffSpec lists the fields that differ between the spec read back from the runtime and the desired workload.
func diffSpec(old, new schema.Workload) []Change {
	var cs []Change
	add := func(path, o, n string) {
		if o != n {
			cs = append(cs, Change{Path: path, Old: o, New: n})
		}
	}
	add("image", strconv.Quote(old.Image), strconv.Quote(new.Image))
	add("command", list(old.Command), list(new.Command))
	add("args", list(old.Args), list(new.Args))
	keys := map[string]bool{}
	for k := range old.Env {
		keys[k] = true
	}
	for k := range new.Env {
		keys[k] = true
	}
	ks := make([]string, 0, len(keys))
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		o, ok1 := old.Env[k]
		n, ok2 := new.Env[k]
		if ok1 == ok2 && o == n {
			continue
		}
		show := func(v string, ok bool) string {
			switch {
			case !ok:
				return "(unset)"
			case sensitive(k):
				return "(sensitive)"
			default:
				return strconv.Quote(v)
			}
		}
		cs = append(cs, Change{Path: "env." + k, Old: show(o, ok1), New: show(n, ok2)})
	}
	names := func(m map[string]string, k string) string {
		if v, ok := m[k]; ok {
			return "secret " + strconv.Quote(v)
		}
		return "(unset)"
	}
	for _, k := range unionKeys(old.SecretEnv, new.SecretEnv) {
		add("secretEnv."+k, names(old.SecretEnv, k), names(new.SecretEnv, k))
	}
	files := func(m map[string]schema.File) map[string]string {
		out := map[string]string{}
		for p, f := range m {
			out[p] = f.Secret
		}
		return out
	}
	of, nf := files(old.Files), files(new.Files)
	for _, k := range unionKeys(of, nf) {
		add("files."+k, names(of, k), names(nf, k))
	}
	for i := 0; i < max(len(old.Ports), len(new.Ports)); i++ {
		add(fmt.Sprintf("ports[%d]", i), port(old.Ports, i), port(new.Ports, i))
	}
	add("replicas", strconv.Itoa(old.Replicas), strconv.Itoa(new.Replicas))
	add("resources.cpuMillis", strconv.FormatInt(old.Resources.CPUMillis, 10), strconv.FormatInt(new.Resources.CPUMillis, 10))
	add("resources.memoryBytes", strconv.FormatInt(old.Resources.MemoryBytes, 10), strconv.FormatInt(new.Resources.MemoryBytes, 10))
	add("health", health(old.Health), health(new.Health))
	return cs
}

// unionKeys is the sorted union of the keys of a and b.
func unionKeys(a, b map[string]string) []string {
	ks := make([]string, 0, len(a)+len(b))
	for k := range a {
		ks = append(ks, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

func list(s []string) string {
	if len(s) == 0 {
		return "[]"
	}
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = strconv.Quote(x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func port(ps []schema.Port, i int) string {
	if i >= len(ps) {
		return "(none)"
	}
	p := ps[i]
	s := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
	if p.Name != "" {
		s = p.Name + " " + s
	}
	if p.Public {
		s += fmt.Sprintf(" public:%d", p.HostPort)
	}
	return s
}

func health(h *schema.HealthCheck) string {
	if h == nil {
		return "(none)"
	}
	var s string
	switch h.Kind() {
	case "http":
		s = fmt.Sprintf("http %s:%d", h.HTTP.Path, h.HTTP.Port)
	case "tcp":
		s = fmt.Sprintf("tcp :%d", h.TCP.Port)
	default:
		s = "command " + list(h.Command)
	}
	s = fmt.Sprintf("%s every %s timeout %s retries %d", s, h.Interval.D(), h.Timeout.D(), h.Retries)
	if h.StartPeriod > 0 {
		s += fmt.Sprintf(" start period %s", h.StartPeriod.D())
	}
	return s
}

// checkCapabilities lists the fields of w that a target with caps cannot honour.
func checkCapabilities(w schema.Workload, env schema.Environment, target string, caps providers.Capabilities, v providers.Validator) []Problem {
	var ps []Problem
	add := func(field, msg string) {
		ps = append(ps, Problem{Workload: w.Name, Target: target, Field: field, Pos: w.Position(field), Message: msg})
	}
	if h := w.Health; h != nil {
		switch k := h.Kind(); {
		case k == "http" && !caps.HealthHTTP:
			add("health.http", "HTTP health checks are not supported")
		case k == "tcp" && !caps.HealthTCP:
			add("health.tcp", "TCP health checks are not supported")
		case k == "command" && !caps.HealthCommand:
			add("health.command", "command health checks are not supported")
		}
	}
	for i, p := range w.Ports {
		if p.Public && !caps.PublicPorts {
			add(fmt.Sprintf("ports[%d].public", i), "public ports are not supported")
		}
		if p.Protocol == "udp" && !caps.UDP {
			add(fmt.Sprintf("ports[%d].protocol", i), "UDP ports are not supported")
		}
	}
	if w.Resources.CPUMillis > 0 && !caps.CPULimit {
		add("resources.cpu", "CPU limits are not supported")
	}
	if w.Resources.MemoryBytes > 0 && !caps.MemoryLimit {
		add("resources.memory", "memory limits are not supported")
	}
	for _, n := range w.Secrets() {
		s, ok := env.Secrets[n]
		if !ok {
			continue // an undeclared secret is a load error already
		}
		if k := s.Kind(); !slices.Contains(caps.SecretKinds, k) {
			add(providers.SecretField(w, n), fmt.Sprintf("secret %s: %s secrets cannot be delivered to this target", n, k))
		}
	}
	if len(w.Files) > 0 && !caps.SecretFiles {
		add("files", "secret files are not supported")
	}
	if caps.MaxReplicas > 0 && w.Replicas > caps.MaxReplicas {
		add("replicas", fmt.Sprintf("%d replicas asked, at most %d supported", w.Replicas, caps.MaxReplicas))
	}
	if v != nil {
		// The provider's own problem about a field says more than the generic one (why, and what to write
		// instead): it replaces it.
		vps := v.Validate(w)
		ps = slices.DeleteFunc(ps, func(p Problem) bool {
			return slices.ContainsFunc(vps, func(vp providers.Problem) bool { return vp.Field == p.Field })
		})
		for _, vp := range vps {
			add(vp.Field, vp.Message)
		}
	}
	return ps
}
