package schema

import (
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
)

// topPreviews is the top-level field configuring preview environments.
const topPreviews = "previews"

// Defaults of `previews: pr:`, filled in by Load.
const (
	DefaultPreviewApproveLabel = "berth-preview-approved"
	DefaultPreviewMaxTotal     = 10
	DefaultPreviewMaxPerAuthor = 3
	DefaultPreviewReplicas     = 1
)

// DefaultPreviewOverride returns the override patterns used when `previews: pr: override` is not given: a pull
// request may change its workloads' images and plain environment variables.
func DefaultPreviewOverride() []string {
	return []string{"workloads.*.image", "workloads.*.env.*"}
}

type rawPreviewPR struct {
	From string `json:"from"`
	When *struct {
		Labels         []string `json:"labels"`
		ExcludeLabels  []string `json:"excludeLabels"`
		Drafts         bool     `json:"drafts"`
		TargetBranches []string `json:"targetBranches"`
	} `json:"when"`
	Forks        string  `json:"forks"`
	ApproveLabel *string `json:"approveLabel"`
	TTL          *string `json:"ttl"`
	Max          *struct {
		Total     int `json:"total"`
		PerAuthor int `json:"perAuthor"`
	} `json:"max"`
	Caps *struct {
		Replicas int `json:"replicas"`
	} `json:"caps"`
	Override []string `json:"override"`
	Gate     *struct {
		Statuses []string `json:"statuses"`
	} `json:"gate"`
	Skip    []string `json:"skip"`
	Secrets string   `json:"secrets"`
}

// overrideSegmentRE is one segment of an override pattern after "workloads.": letters, digits, '_', '-' and the
// wildcard '*', optionally followed by a list index or "[*]" ("ports[0]", "ports[*]").
var overrideSegmentRE = regexp.MustCompile(`^[A-Za-z0-9_*-]+(\[([0-9]+|\*)\])?$`)

// previews checks and renders the `previews:` section v (absent: nil). envs are the declared environments, cfg the
// rendered ones (an environment that failed to render has its own errors and is not checked against).
func (l *loader) previews(v cue.Value, cfg *Config, envs []field, first Pos) *Previews {
	if !v.Exists() {
		return nil
	}
	at := posOf(v, first)
	pos := map[string]Pos{}
	collectPos(v, "", pos)
	if _, ok := pos[""]; !ok {
		pos[""] = at
	}
	u := l.defs.previews.Unify(v)
	if err := u.Validate(cue.Concrete(true)); err != nil {
		l.errs.addCUE(err, cueOpts{prefix: []string{topPreviews}, stripDef: true, at: at, pos: pos})
		return nil
	}
	out := &Previews{}
	prv := u.LookupPath(cue.MakePath(cue.Str("pr")))
	if !prv.Exists() {
		return out
	}
	var raw rawPreviewPR
	if err := prv.Decode(&raw); err != nil {
		l.errs.addCUE(err, cueOpts{prefix: []string{topPreviews, "pr"}, at: at})
		return nil
	}
	ppos := map[string]Pos{}
	for k, p := range pos {
		switch {
		case k == "pr":
			ppos[""] = p
		case strings.HasPrefix(k, "pr."):
			ppos[k[len("pr."):]] = p
		}
	}
	if _, ok := ppos[""]; !ok {
		ppos[""] = at
	}
	nerr := len(l.errs.errs)
	const path = topPreviews + ".pr"
	fail := func(f, format string, args ...any) {
		l.errs.add(nearest(ppos, f), path+"."+f, format, args...)
	}

	p := &PreviewPolicy{
		From:         raw.From,
		Forks:        raw.Forks,
		ApproveLabel: DefaultPreviewApproveLabel,
		Max:          PreviewMax{Total: DefaultPreviewMaxTotal, PerAuthor: DefaultPreviewMaxPerAuthor},
		Caps:         PreviewCaps{Replicas: DefaultPreviewReplicas},
		Override:     DefaultPreviewOverride(),
		Skip:         raw.Skip,
		Secrets:      raw.Secrets,
		Pos:          ppos,
	}
	if p.Forks == "" {
		p.Forks = ForksNever
	}
	if raw.When != nil {
		p.When = PreviewWhen{Labels: raw.When.Labels, ExcludeLabels: raw.When.ExcludeLabels, Drafts: raw.When.Drafts,
			TargetBranches: raw.When.TargetBranches}
	}
	if raw.ApproveLabel != nil {
		p.ApproveLabel = *raw.ApproveLabel
	}
	if raw.TTL != nil {
		d, err := parseDuration(*raw.TTL)
		if err != nil {
			fail("ttl", "%v", err)
		}
		p.TTL = d
	}
	if m := raw.Max; m != nil {
		if m.Total != 0 {
			p.Max.Total = m.Total
		}
		if m.PerAuthor != 0 {
			p.Max.PerAuthor = m.PerAuthor
		}
	}
	if c := raw.Caps; c != nil && c.Replicas != 0 {
		p.Caps.Replicas = c.Replicas
	}
	if cpu := prv.LookupPath(cue.ParsePath("caps.cpu")); cpu.Exists() {
		n, err := parseCPU(quantityText(cpu))
		if err != nil {
			fail("caps.cpu", "%v", err)
		}
		p.Caps.CPUMillis = n
	}
	if mem := prv.LookupPath(cue.ParsePath("caps.memory")); mem.Exists() {
		n, err := parseMemory(quantityText(mem))
		if err != nil {
			fail("caps.memory", "%v", err)
		}
		p.Caps.MemoryBytes = n
	}
	if raw.Override != nil {
		p.Override = raw.Override
	}
	for i, o := range p.Override {
		if err := checkOverride(o); err != nil {
			fail("override["+strconv.Itoa(i)+"]", "override %q: %v", o, err)
		}
	}
	if raw.Gate != nil {
		p.Gate.Statuses = raw.Gate.Statuses
	}

	declared := make([]string, 0, len(envs))
	for _, f := range envs {
		declared = append(declared, f.name)
	}
	if !slices.Contains(declared, p.From) {
		fail("from", "environment %q is not declared (declared: %s)", p.From, strings.Join(declared, ", "))
	}
	if p.Secrets != "" && !slices.Contains(declared, p.Secrets) {
		fail("secrets", "environment %q is not declared (declared: %s): previews take their secret declarations from a declared environment",
			p.Secrets, strings.Join(declared, ", "))
	}
	if base, ok := cfg.Environments[p.From]; ok {
		if p.When.TargetBranches == nil {
			p.When.TargetBranches = []string{base.Branch}
		}
		names := make([]string, 0, len(base.Workloads))
		for _, w := range base.Workloads {
			names = append(names, w.Name)
		}
		for i, s := range p.Skip {
			if !slices.Contains(names, s) {
				fail("skip["+strconv.Itoa(i)+"]", "workload %q is not a workload of environment %s (its workloads: %s)",
					s, p.From, strings.Join(names, ", "))
			}
		}
	}
	if len(l.errs.errs) != nerr {
		return nil
	}
	out.PR = p
	return out
}

// checkOverride checks an override pattern: "workloads." and then segments ("web", "*", "env", "GREET*",
// "ports[0]", "ports[*]"), with "**" allowed as the last segment only.
func checkOverride(o string) error {
	rest, ok := strings.CutPrefix(o, topWorkloads+".")
	if !ok || rest == "" {
		return fmt.Errorf(`want "workloads." and then field segments, e.g. "workloads.*.image", "workloads.web.env.*"`)
	}
	segs := strings.Split(rest, ".")
	for i, s := range segs {
		switch {
		case s == "**" && i == len(segs)-1:
		case strings.Contains(s, "**"):
			return fmt.Errorf(`"**" is allowed only as the whole last segment, e.g. "workloads.web.**"`)
		case !overrideSegmentRE.MatchString(s):
			return fmt.Errorf("segment %q: use letters, digits, '_', '-' and '*' (a list index as in \"ports[0]\" or \"ports[*]\")", s)
		}
	}
	return nil
}

// matchOverride tells whether the field path segments (starting with "workloads") match the pattern o.
func matchOverride(o string, path []string) bool {
	pat := strings.Split(o, ".")
	for i, ps := range pat {
		if ps == "**" && i == len(pat)-1 {
			return len(path) >= i
		}
		if i >= len(path) || !matchSegment(ps, path[i]) {
			return false
		}
	}
	return len(pat) == len(path)
}

// matchSegment matches one segment against a pattern whose only wildcard is '*' (any run of characters).
func matchSegment(pat, s string) bool {
	if pat == "*" {
		return true
	}
	parts := strings.Split(pat, "*")
	if len(parts) == 1 {
		return pat == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// previewPolicyFields lists PreviewPolicy's fields by their CUE names, for comparing two policies.
func previewPolicyFields(p *PreviewPolicy) map[string]any {
	return map[string]any{
		"from": p.From, "when": p.When, "forks": p.Forks, "approveLabel": p.ApproveLabel, "ttl": p.TTL,
		"max": p.Max, "caps": p.Caps, "override": p.Override, "gate": p.Gate, "skip": p.Skip, "secrets": p.Secrets,
	}
}

// CheckPreviewHead checks a pull request's head against the trusted branch: base is the configuration of the
// branch the policy p was read from, head the configuration of the pull request's head commit (loaded the same way;
// untrusted). A head may differ from base only in the fields of p.From's workloads that p.Override allows; it never
// changes targets, secret declarations or the previews section, and keeps p.From on the same branch.
//
// It returns the workloads the preview runs, head's workloads of p.From (sorted by name, without p.Skip), or every
// problem found, sorted by file and line, each at the head's file:line (the base's where the head has nothing, e.g.
// a removed workload).
func CheckPreviewHead(base, head *Config, p *PreviewPolicy) ([]Workload, Errors) {
	var errs errList
	if base == nil || head == nil || p == nil {
		errs.add(Pos{}, topPreviews+".pr", "no preview policy, or no base or head configuration, to check a pull request's head against")
		return nil, errs.errs
	}
	allowed := "override: " + strings.Join(p.Override, ", ")
	if len(p.Override) == 0 {
		allowed = "override is empty: no change is allowed"
	}

	// Targets decide where things run.
	for _, n := range sortedUnion(base.Targets, head.Targets) {
		bt, inBase := base.Targets[n]
		ht, inHead := head.Targets[n]
		var what string
		switch {
		case !inHead:
			what = "removes"
		case !inBase:
			what = "adds"
		case bt.Type != ht.Type || !reflect.DeepEqual(bt.Settings, ht.Settings):
			what = "changes"
		default:
			continue
		}
		errs.add(headFirst(ht.Pos, bt.Pos), topTargets+"."+n,
			"the pull request %s target %s: previews use the base branch's targets; a pull request cannot change them", what, n)
	}

	// Secret declarations decide where secrets come from and go.
	for _, en := range sortedUnion(base.Environments, head.Environments) {
		be, he := base.Environments[en], head.Environments[en]
		for _, sn := range sortedUnion(be.Secrets, he.Secrets) {
			bs, inBase := be.Secrets[sn]
			hs, inHead := he.Secrets[sn]
			var what string
			switch {
			case !inHead:
				what = "removes"
			case !inBase:
				what = "adds"
			default:
				bc, hc := bs, hs
				bc.Pos, hc.Pos = Pos{}, Pos{}
				if reflect.DeepEqual(bc, hc) {
					continue
				}
				what = "changes"
			}
			errs.add(headFirst(hs.Pos, he.Pos, be.Secrets[sn].Pos), topEnvironments+"."+en+"."+topSecrets+"."+sn,
				"the pull request %s secret %s of environment %s: previews use the base branch's secrets; a pull request cannot change them",
				what, sn, en)
		}
	}

	// Registries decide which credentials go where, and which images are pinned.
	for _, h := range sortedUnion(base.Registries, head.Registries) {
		br, inBase := base.Registries[h]
		hr, inHead := head.Registries[h]
		var what string
		switch {
		case !inHead:
			what = "removes"
		case !inBase:
			what = "adds"
		default:
			bc, hc := br, hr
			bc.Pos, hc.Pos = nil, nil
			if reflect.DeepEqual(bc, hc) {
				continue
			}
			what = "changes"
		}
		errs.add(headFirst(hr.Pos[""], br.Pos[""]), topRegistries+"."+strconv.Quote(h),
			"the pull request %s registry %s: previews use the base branch's registries; a pull request cannot change them", what, h)
	}

	// The previews section is the policy itself.
	checkPreviewsSection(&errs, base.Previews, head.Previews)

	// The base environment: same branch, and workloads changed only where override allows.
	be, bok := base.Environments[p.From]
	he, hok := head.Environments[p.From]
	switch {
	case !bok:
		errs.add(headFirst(p.Pos["from"], p.Pos[""]), topPreviews+".pr.from",
			"environment %s is not declared on the base branch", p.From)
	case !hok:
		errs.add(be.Pos, topEnvironments+"."+p.From,
			"the pull request removes environment %s, the base of previews: a preview needs it, on branch %q", p.From, be.Branch)
	default:
		if he.Branch != be.Branch {
			errs.add(he.Pos, topEnvironments+"."+p.From+".branch",
				"the pull request binds environment %s to branch %q instead of %q: previews use the base branch's environment; a pull request cannot change its branch",
				p.From, he.Branch, be.Branch)
		}
		names := map[string]bool{}
		for _, w := range be.Workloads {
			names[w.Name] = true
		}
		for _, w := range he.Workloads {
			names[w.Name] = true
		}
		for _, n := range slices.Sorted(maps.Keys(names)) {
			if slices.Contains(p.Skip, n) {
				continue
			}
			bw, inBase := be.Workload(n)
			hw, inHead := he.Workload(n)
			for _, d := range diffWorkload(bw, inBase, hw, inHead) {
				full := append([]string{topWorkloads, n}, d.path...)
				if slices.ContainsFunc(p.Override, func(o string) bool { return matchOverride(o, full) }) {
					continue
				}
				field := joinSegments(d.path)
				var at Pos
				if inHead {
					at = nearest(hw.Pos, posKey(field))
				}
				if at.File == "" && inBase {
					at = nearest(bw.Pos, posKey(field))
				}
				errs.add(at, joinSegments(full),
					"the pull request %s %s, which previews do not allow (%s); to allow it, add a pattern such as %q to previews.pr.override on the base branch",
					d.what, joinSegments(full), allowed, suggestPattern(full))
			}
		}
	}
	if len(errs.errs) > 0 {
		_ = errs.result()
		return nil, errs.errs
	}
	out := make([]Workload, 0, len(he.Workloads))
	for _, w := range he.Workloads {
		if !slices.Contains(p.Skip, w.Name) {
			out = append(out, w.clone())
		}
	}
	slices.SortFunc(out, func(a, b Workload) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// checkPreviewsSection reports where head's previews section differs from base's (positions aside).
func checkPreviewsSection(errs *errList, base, head *Previews) {
	const msg = "the pull request %s %s: previews use the base branch's preview settings; a pull request cannot change them"
	var bp, hp *PreviewPolicy
	if base != nil {
		bp = base.PR
	}
	if head != nil {
		hp = head.PR
	}
	switch {
	case bp == nil && hp == nil: // "previews: {}" and no section alike: no policy
		return
	case bp == nil:
		errs.add(hp.Pos[""], topPreviews+".pr", msg, "adds", "previews.pr")
		return
	case hp == nil:
		errs.add(bp.Pos[""], topPreviews+".pr", msg, "removes", "previews.pr")
		return
	}
	bf, hf := previewPolicyFields(bp), previewPolicyFields(hp)
	_, bset := bp.Pos["when.targetBranches"]
	_, hset := hp.Pos["when.targetBranches"]
	if !bset && !hset {
		// Both default to their environment's branch: a change of that branch is reported there, once.
		bw, hw := bp.When, hp.When
		bw.TargetBranches, hw.TargetBranches = nil, nil
		bf["when"], hf["when"] = bw, hw
	}
	for _, k := range slices.Sorted(maps.Keys(bf)) {
		if reflect.DeepEqual(bf[k], hf[k]) {
			continue
		}
		errs.add(headFirst(nearest(hp.Pos, k), bp.Pos[""]), topPreviews+".pr."+k, msg, "changes", "previews.pr."+k)
	}
}

// headFirst is the first position that is set: the head's, then the base's.
func headFirst(ps ...Pos) Pos {
	for _, p := range ps {
		if p.File != "" {
			return p
		}
	}
	return Pos{}
}

// sortedUnion is the sorted union of the keys of a and b.
func sortedUnion[V any](a, b map[string]V) []string {
	ks := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

// fieldDiff is one differing field of a workload: its path segments relative to the workload (none: the workload
// itself) and "changes", "adds" or "removes".
type fieldDiff struct {
	path []string
	what string
}

// fieldNode is a workload as a tree of fields: a leaf holds a value's text, an inner node its fields by name.
type fieldNode struct {
	leaf bool
	val  string
	kids map[string]*fieldNode
}

func leafNode(v string) *fieldNode { return &fieldNode{leaf: true, val: v} }

func (n *fieldNode) set(k string, c *fieldNode) *fieldNode {
	if n.kids == nil {
		n.kids = map[string]*fieldNode{}
	}
	n.kids[k] = c
	return n
}

// workloadTree lays out w with the field paths of the plan's changes: image, env.KEY, secretEnv.KEY, files./path,
// ports[0].port, replicas, resources.cpuMillis, health.http.path, provider... Maps are always present (possibly
// empty) so that a new key is reported at its own path ("env.KEY"), not as a new map.
func workloadTree(w Workload) *fieldNode {
	quote := func(s []string) string {
		q := make([]string, len(s))
		for i, x := range s {
			q[i] = strconv.Quote(x)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	root := &fieldNode{}
	root.set("provider", leafNode(w.Provider))
	root.set("image", leafNode(w.Image))
	root.set("command", leafNode(quote(w.Command)))
	root.set("args", leafNode(quote(w.Args)))
	root.set("replicas", leafNode(strconv.Itoa(w.Replicas)))
	env, senv, files := &fieldNode{}, &fieldNode{}, &fieldNode{}
	for k, v := range w.Env {
		env.set(k, leafNode(v))
	}
	for k, v := range w.SecretEnv {
		senv.set(k, leafNode(v))
	}
	for k, v := range w.Files {
		files.set(k, leafNode(v.Secret))
	}
	root.set("env", env).set("secretEnv", senv).set("files", files)
	for i, p := range w.Ports {
		pn := &fieldNode{}
		pn.set("name", leafNode(p.Name)).set("port", leafNode(strconv.Itoa(p.Port))).
			set("protocol", leafNode(p.Protocol)).set("public", leafNode(strconv.FormatBool(p.Public))).
			set("hostPort", leafNode(strconv.Itoa(p.HostPort)))
		root.set("ports["+strconv.Itoa(i)+"]", pn)
	}
	res := &fieldNode{}
	if w.Resources.CPUMillis != 0 {
		res.set("cpuMillis", leafNode(strconv.FormatInt(w.Resources.CPUMillis, 10)))
	}
	if w.Resources.MemoryBytes != 0 {
		res.set("memoryBytes", leafNode(strconv.FormatInt(w.Resources.MemoryBytes, 10)))
	}
	root.set("resources", res)
	if h := w.Health; h != nil {
		hn := &fieldNode{}
		if h.HTTP != nil {
			hn.set("http", (&fieldNode{}).set("path", leafNode(h.HTTP.Path)).set("port", leafNode(strconv.Itoa(h.HTTP.Port))))
		}
		if h.TCP != nil {
			hn.set("tcp", (&fieldNode{}).set("port", leafNode(strconv.Itoa(h.TCP.Port))))
		}
		if h.Command != nil {
			hn.set("command", leafNode(quote(h.Command)))
		}
		hn.set("interval", leafNode(h.Interval.D().String())).set("timeout", leafNode(h.Timeout.D().String())).
			set("retries", leafNode(strconv.Itoa(h.Retries)))
		if h.StartPeriod != 0 {
			hn.set("startPeriod", leafNode(h.StartPeriod.D().String()))
		}
		root.set("health", hn)
	}
	return root
}

// diffWorkload lists the fields that differ between the base's and the head's workload, sorted by path. A workload
// only one side has is the one difference with no path.
func diffWorkload(b Workload, inBase bool, h Workload, inHead bool) []fieldDiff {
	switch {
	case inBase && !inHead:
		return []fieldDiff{{what: "removes"}}
	case !inBase && inHead:
		return []fieldDiff{{what: "adds"}}
	case !inBase && !inHead:
		return nil
	}
	var out []fieldDiff
	var walk func(a, b *fieldNode, path []string)
	walk = func(a, b *fieldNode, path []string) {
		switch {
		case a == nil && b == nil:
		case a == nil:
			out = append(out, fieldDiff{slices.Clone(path), "adds"})
		case b == nil:
			out = append(out, fieldDiff{slices.Clone(path), "removes"})
		case a.leaf || b.leaf:
			if !a.leaf || !b.leaf || a.val != b.val {
				out = append(out, fieldDiff{slices.Clone(path), "changes"})
			}
		default:
			for _, k := range sortedUnion(a.kids, b.kids) {
				walk(a.kids[k], b.kids[k], append(path, k))
			}
		}
	}
	walk(workloadTree(b), workloadTree(h), nil)
	return out
}

// joinSegments writes path segments with dots: "workloads.web.ports[0].port", "workloads.web.files./run/db".
func joinSegments(segs []string) string { return strings.Join(segs, ".") }

// posKey maps a field path of the plan's form to the key of Workload.Pos that set it.
func posKey(field string) string {
	switch {
	case field == "resources.cpuMillis":
		return "resources.cpu"
	case field == "resources.memoryBytes":
		return "resources.memory"
	case strings.HasPrefix(field, "secretEnv."):
		return "env." + strings.TrimPrefix(field, "secretEnv.")
	}
	return field
}

// suggestPattern is an override pattern allowing exactly path, with "*" for a segment a pattern cannot spell.
func suggestPattern(path []string) string {
	segs := slices.Clone(path)
	for i, s := range segs[1:] {
		if !overrideSegmentRE.MatchString(s) {
			segs[i+1] = "*"
		}
	}
	return joinSegments(segs)
}
