package schema

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// ErrNoFiles is returned (wrapped, naming the directory) when a directory holds no .cue file at its root.
var ErrNoFiles = errors.New("no .cue files")

// Defaults applied to fields the user left out.
const (
	DefaultReplicas       = 1
	DefaultProtocol       = "tcp"
	DefaultHealthInterval = Duration(10e9)
	DefaultHealthTimeout  = Duration(3e9)
	DefaultHealthRetries  = 3
	DefaultHealthHTTPPath = "/"
	// DefaultEndpointTTL and DefaultEndpointDrain are an endpoint's ttl and drain; DefaultMigrationInterval how
	// long each migration step is watched.
	DefaultEndpointTTL       = Duration(60e9)
	DefaultEndpointDrain     = Duration(30e9)
	DefaultMigrationInterval = Duration(30e9)
	topTargets               = "targets"
	topDNS                   = "dns"
	topEnvironments          = "environments"
	topWorkloads             = "workloads"
	nameRule                 = "lowercase letters, digits and '-', starting with a letter, not ending with '-', at most 40 characters"
)

// Load reads the .cue files at the root of dir (subdirectories are ignored), checks them against the schema and
// renders the typed Config. Problems in the user's files are returned as Errors; other failures (an unreadable
// directory) as wrapped errors. It never uses the network.
func Load(dir string) (*Config, error) {
	files, err := parseDir(dir)
	if err != nil {
		return nil, err
	}
	l := &loader{ctx: cuecontext.New()}
	l.defs = compileDefs(l.ctx)
	cfg := l.load(files)
	if err := l.errs.result(); err != nil {
		return nil, err
	}
	return withSecretFiles(cfg, dir), nil
}

// parseDir parses every .cue file at the root of dir, sorted by name. Syntax errors are returned as Errors.
func parseDir(dir string) ([]*ast.File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read repository %s: %w", dir, err)
	}
	var (
		files []*ast.File
		errs  errList
	)
	for _, e := range entries { // ReadDir sorts by name.
		if !strings.HasSuffix(e.Name(), ".cue") || e.IsDir() {
			continue
		}
		if e.Type()&fs.ModeType != 0 && e.Type()&fs.ModeSymlink == 0 {
			continue // devices, pipes and sockets
		}
		src, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", e.Name(), err)
		}
		f, err := parser.ParseFile(e.Name(), src)
		if err != nil {
			errs.addCUE(err, cueOpts{at: Pos{File: e.Name(), Line: 1, Column: 1}})
			continue
		}
		files = append(files, f)
	}
	if err := errs.result(); err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("repository %s: %w at its root", dir, ErrNoFiles)
	}
	return files, nil
}

type loader struct {
	ctx  *cue.Context
	defs defs
	errs errList
}

func (l *loader) load(files []*ast.File) *Config {
	bc := build.NewContext()
	inst := bc.NewInstance(".", func(pos token.Pos, path string) *build.Instance {
		if path == ImportPath {
			return schemaInstance(bc)
		}
		if !strings.Contains(strings.Split(path, "/")[0], ".") {
			return nil // the CUE standard library
		}
		bad := bc.NewInstance(path, nil)
		bad.Err = cueerrors.Newf(pos, "import %q is not supported: only the CUE standard library and %q can be imported", path, ImportPath)
		return bad
	})
	for _, f := range files {
		if err := inst.AddSyntax(f); err != nil {
			l.errs.addCUE(err, cueOpts{at: Pos{File: f.Filename, Line: 1, Column: 1}})
		}
	}
	first := Pos{File: files[0].Filename, Line: 1, Column: 1}
	if l.errs.errs != nil {
		return nil
	}
	root := l.ctx.BuildInstance(inst)
	if err := root.Validate(); err != nil {
		l.errs.addCUE(err, cueOpts{at: first})
		return nil
	}
	if root.IncompleteKind() != cue.StructKind {
		l.errs.add(first, "", "the repository must be a struct with targets, environments and workloads")
		return nil
	}

	var targets, envs, wls, secs, previews, regs, dnss cue.Value
	it, _ := root.Fields()
	for it.Next() {
		switch it.Selector().String() {
		case topTargets:
			targets = it.Value()
		case topEnvironments:
			envs = it.Value()
		case topWorkloads:
			wls = it.Value()
		case topSecrets:
			secs = it.Value()
		case topPreviews:
			previews = it.Value()
		case topRegistries:
			regs = it.Value()
		case topDNS:
			dnss = it.Value()
		default:
			l.errs.add(posOf(it.Value(), first), it.Selector().String(), "field not allowed (want targets, environments, workloads, secrets, previews, registries or dns)")
		}
	}

	cfg := &Config{Targets: map[string]Target{}, Environments: map[string]Environment{}}
	for _, f := range l.fields(targets, topTargets, first) {
		if t, ok := l.target(topTargets, l.defs.target, l.defs.targetTypes, f.name, f.v); ok {
			cfg.Targets[f.name] = t
		}
	}
	for _, f := range l.fields(dnss, topDNS, first) {
		if t, ok := l.target(topDNS, l.defs.dns, l.defs.dnsTypes, f.name, f.v); ok {
			if cfg.DNS == nil {
				cfg.DNS = map[string]Target{}
			}
			cfg.DNS[f.name] = t
		}
	}
	base := l.fields(wls, topWorkloads, first)
	envFields := l.fields(envs, topEnvironments, first)
	if len(envFields) == 0 && !envs.Exists() {
		l.errs.add(first, topEnvironments, "at least one environment is required, e.g. environments: production: {branch: \"main\"}")
	}

	// Check and render every top-level workload once; environments that do not touch one share its result.
	bases := map[string]*baseWorkload{}
	for _, f := range base {
		bases[f.name] = l.baseWorkload(f.name, f.v)
	}
	secrets := l.baseSecrets(secs, first)
	for _, f := range envFields {
		env, ok := l.environment(f.name, f.v, base, bases)
		if sok := l.environmentSecrets(f.name, f.v, &env, secrets); ok && sok {
			cfg.Environments[f.name] = env
		}
	}
	cfg.Previews = l.previews(previews, cfg, envFields, first)
	cfg.Registries = l.registries(regs, first)
	l.checkRegistrySecrets(cfg)
	l.checkEndpoints(cfg, dnss.Exists())
	return cfg
}

type field struct {
	name string
	v    cue.Value
}

// fields lists the regular fields of a struct of named entries, sorted by name, reporting bad names.
func (l *loader) fields(v cue.Value, path string, at Pos) []field {
	if !v.Exists() {
		return nil
	}
	if v.IncompleteKind() != cue.StructKind {
		l.errs.add(posOf(v, at), path, "must be a struct of named entries, not %s", v.IncompleteKind())
		return nil
	}
	var out []field
	it, _ := v.Fields()
	for it.Next() {
		name := it.Selector().Unquoted()
		if !nameRE.MatchString(name) {
			if l.errs.skip == nil {
				l.errs.skip = map[string]bool{}
			}
			l.errs.skip[path+"."+it.Selector().String()] = true
			l.errs.add(posOf(it.Value(), at), path+"."+it.Selector().String(), "invalid name %q: use %s", name, nameRule)
			continue
		}
		out = append(out, field{name, it.Value()})
	}
	slices.SortFunc(out, func(a, b field) int { return strings.Compare(a.name, b.name) })
	return out
}

// target reads one entry of a section of typed entries (targets, dns): its type's closed definition of types
// checks it, so that a mistake is reported against that type's fields.
func (l *loader) target(section string, def cue.Value, types map[string]cue.Value, name string, raw cue.Value) (Target, bool) {
	at := posOf(raw, Pos{})
	known := slices.Sorted(maps.Keys(types))
	kind := "target"
	if section == topDNS {
		kind = "dns"
	}
	if tv := raw.LookupPath(cue.ParsePath("type")); !tv.Exists() {
		l.errs.add(at, section+"."+name+".type", "required field type is missing (one of: %s)", strings.Join(known, ", "))
		return Target{}, false
	}
	if typ, err := raw.LookupPath(cue.ParsePath("type")).String(); err == nil {
		d, ok := types[typ]
		if !ok {
			l.errs.add(posOf(raw.LookupPath(cue.ParsePath("type")), at), section+"."+name+".type",
				"unknown %s type %q (known: %s)", kind, typ, strings.Join(known, ", "))
			return Target{}, false
		}
		def = d
	}
	v := def.Unify(raw)
	if err := v.Validate(cue.Concrete(true)); err != nil {
		l.errs.addCUE(err, cueOpts{prefix: []string{section, name}, stripDef: true, at: at})
		return Target{}, false
	}
	var m map[string]any
	if err := v.Decode(&m); err != nil {
		l.errs.addCUE(err, cueOpts{prefix: []string{section, name}, stripDef: true, at: at})
		return Target{}, false
	}
	t := Target{Name: name, Pos: at}
	t.Type, _ = m["type"].(string)
	delete(m, "type")
	if len(m) > 0 {
		t.Settings = m
	}
	return t, true
}

// baseWorkload is a top-level workload: its value unified with #Workload, and its rendering once checked.
type baseWorkload struct {
	raw    cue.Value
	v      cue.Value
	pos    map[string]Pos
	ok     bool
	render *Workload // nil until first needed
}

func (l *loader) baseWorkload(name string, raw cue.Value) *baseWorkload {
	b := &baseWorkload{raw: raw, pos: map[string]Pos{}}
	collectPos(raw, "", b.pos)
	b.v = l.defs.workload.Unify(raw)
	prefix := []string{topWorkloads, name}
	if err := b.v.Validate(cue.Concrete(true)); err != nil {
		l.errs.addCUE(err, cueOpts{prefix: prefix, stripDef: true, at: b.pos[""], pos: b.pos})
		return b
	}
	w, ok := l.render(name, b.v, b.pos, strings.Join(prefix, "."))
	b.ok, b.render = ok, w
	return b
}

func (l *loader) environment(name string, raw cue.Value, base []field, bases map[string]*baseWorkload) (Environment, bool) {
	at := posOf(raw, Pos{})
	prefix := []string{topEnvironments, name}
	overrides := map[string]cue.Value{}
	for _, f := range l.fields(raw.LookupPath(cue.ParsePath(topWorkloads)), strings.Join(prefix, ".")+"."+topWorkloads, at) {
		overrides[f.name] = f.v
	}
	v := l.defs.environment.Unify(raw)
	if err := v.Validate(); err != nil {
		l.errs.addCUE(err, cueOpts{prefix: prefix, stripDef: true, at: at})
		return Environment{}, false
	}
	env := Environment{Name: name, Pos: at, Workloads: []Workload{}}
	branch := raw.LookupPath(cue.ParsePath("branch"))
	switch s, err := branch.String(); {
	case !branch.Exists():
		l.errs.add(at, strings.Join(prefix, "."), "required field branch is missing")
		return env, false
	case err != nil:
		l.errs.add(posOf(branch, at), strings.Join(prefix, ".")+".branch", "branch must be a concrete string")
		return env, false
	default:
		env.Branch = s
	}

	ok := true
	names := make([]string, 0, len(base)+len(overrides))
	for _, f := range base {
		names = append(names, f.name)
	}
	for n := range overrides {
		if bases[n] == nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		b, over := bases[n], overrides[n]
		if b != nil && !b.ok {
			ok = false
			continue
		}
		if !over.Exists() {
			env.Workloads = append(env.Workloads, b.render.clone())
			continue
		}
		wprefix := append(slices.Clip(prefix), topWorkloads, n)
		pos := map[string]Pos{}
		merged := l.defs.workload
		var basePos map[string]Pos
		if b != nil {
			basePos = b.pos
			for k, p := range b.pos {
				pos[k] = p
			}
			merged = b.v
		}
		collectPos(over, "", pos)
		merged = merged.Unify(over)
		if err := merged.Validate(cue.Concrete(true)); err != nil {
			// A conflict names both places; report it first where the environment set its value.
			l.errs.addCUE(err, cueOpts{prefix: wprefix, stripDef: true, at: pos[""], pos: pos, prefer: func(p Pos) bool {
				for _, bp := range basePos {
					if bp.File == p.File && bp.Line == p.Line {
						return false
					}
				}
				return true
			}})
			ok = false
			continue
		}
		w, wok := l.render(n, merged, pos, strings.Join(wprefix, "."))
		if !wok {
			ok = false
			continue
		}
		env.Workloads = append(env.Workloads, *w)
	}
	return env, ok
}

// posOf is the position of v in the user's files, or at when it has none there.
func posOf(v cue.Value, at Pos) Pos {
	if p, ok := userPos(v.Pos()); ok {
		return p
	}
	return at
}

// collectPos records where each field under v was set, with paths such as "image", "ports[0].hostPort" and ""
// for v itself. Existing entries are overwritten, so later calls (environment overrides) win.
func collectPos(v cue.Value, path string, m map[string]Pos) {
	if p, ok := userPos(v.Pos()); ok {
		m[path] = p
	}
	switch v.IncompleteKind() {
	case cue.StructKind:
		it, err := v.Fields()
		if err != nil {
			return
		}
		for it.Next() {
			sub := it.Selector().Unquoted()
			if path != "" {
				sub = path + "." + sub
			}
			collectPos(it.Value(), sub, m)
		}
	case cue.ListKind:
		it, err := v.List()
		if err != nil {
			return
		}
		for i := 0; it.Next(); i++ {
			collectPos(it.Value(), path+"["+strconv.Itoa(i)+"]", m)
		}
	}
}
