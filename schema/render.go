package schema

import (
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
)

type rawWorkload struct {
	Image    string          `json:"image"`
	Command  []string        `json:"command"`
	Args     []string        `json:"args"`
	Provider string          `json:"provider"`
	Replicas *int            `json:"replicas"`
	Env      map[string]any  `json:"env"`
	Files    map[string]File `json:"files"`
	Ports    []rawPort       `json:"ports"`
	Health   *rawHealth      `json:"health"`
	Stateful bool            `json:"stateful"`
	Migrate  *struct {
		Steps       []int   `json:"steps"`
		Interval    *string `json:"interval"`
		AllowUnsafe bool    `json:"allowUnsafe"`
	} `json:"migration"`
}

type rawPort struct {
	Name     string `json:"name"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
	Public   bool   `json:"public"`
	HostPort int    `json:"hostPort"`
	Endpoint *struct {
		Name  string  `json:"name"`
		DNS   string  `json:"dns"`
		TTL   *string `json:"ttl"`
		Drain *string `json:"drain"`
	} `json:"endpoint"`
}

type rawHealth struct {
	HTTP *struct {
		Path *string `json:"path"`
		Port int     `json:"port"`
	} `json:"http"`
	TCP         *TCPCheck `json:"tcp"`
	Command     []string  `json:"command"`
	Interval    *string   `json:"interval"`
	Timeout     *string   `json:"timeout"`
	Retries     *int      `json:"retries"`
	StartPeriod *string   `json:"startPeriod"`
}

// render turns a concrete, schema-checked workload value into a Workload, applying defaults and checking what the
// schema cannot say (durations, quantities, one health kind).
func (l *loader) render(name string, v cue.Value, pos map[string]Pos, path string) (*Workload, bool) {
	at := func(field string) Pos { return nearest(pos, field) }
	nerr := len(l.errs.errs)
	fail := func(field, format string, args ...any) {
		l.errs.add(at(field), path+"."+field, format, args...)
	}

	var raw rawWorkload
	if err := v.Decode(&raw); err != nil {
		l.errs.addCUE(err, cueOpts{prefix: strings.Split(path, "."), stripDef: true, at: pos[""]})
		return nil, false
	}
	w := &Workload{
		Name:     name,
		Provider: raw.Provider,
		Image:    raw.Image,
		Command:  raw.Command,
		Args:     raw.Args,
		Replicas: DefaultReplicas,
		Pos:      pos,
	}
	if raw.Replicas != nil {
		w.Replicas = *raw.Replicas
	}
	for _, k := range slices.Sorted(maps.Keys(raw.Env)) {
		switch x := raw.Env[k].(type) {
		case string:
			if w.Env == nil {
				w.Env = map[string]string{}
			}
			w.Env[k] = x
		case map[string]any: // #SecretUse: CUE checked its one field
			if w.SecretEnv == nil {
				w.SecretEnv = map[string]string{}
			}
			w.SecretEnv[k], _ = x["secret"].(string)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(raw.Files)) {
		if !cleanAbs(p) {
			l.errs.add(at("files."+p), fmt.Sprintf("%s.files.%q", path, p),
				"file path %q must be an absolute, clean path to a file, e.g. \"/run/secrets/db\"", p)
		}
	}
	if len(raw.Files) > 0 {
		w.Files = raw.Files
	}
	// A provider naming no target is the unknown-provider policy's to deny (policies), not a schema error: the
	// rendered environment still tells what the user meant.

	names := map[string]int{}
	for i, rp := range raw.Ports {
		p := Port{Name: rp.Name, Port: rp.Port, Protocol: rp.Protocol, Public: rp.Public, HostPort: rp.HostPort}
		field := "ports[" + strconv.Itoa(i) + "]"
		if p.Protocol == "" {
			p.Protocol = DefaultProtocol
		}
		switch {
		case p.Public && p.HostPort == 0:
			p.HostPort = p.Port
		case !p.Public && p.HostPort != 0:
			fail(field+".hostPort", "hostPort is only allowed on a public port (add public: true)")
		}
		if e := rp.Endpoint; e != nil {
			p.Endpoint = &Endpoint{Name: e.Name, DNS: e.DNS, TTL: DefaultEndpointTTL, Drain: DefaultEndpointDrain}
			if !p.Public {
				fail(field+".endpoint", "an endpoint is only allowed on a public port (add public: true)")
			}
			for _, d := range []struct {
				field string
				s     *string
				dst   *Duration
			}{{"ttl", e.TTL, &p.Endpoint.TTL}, {"drain", e.Drain, &p.Endpoint.Drain}} {
				if d.s == nil {
					continue
				}
				dur, err := parseDuration(*d.s)
				if err != nil {
					fail(field+".endpoint."+d.field, "%v", err)
					continue
				}
				*d.dst = dur
			}
		}
		if p.Name != "" {
			if j, dup := names[p.Name]; dup {
				fail(field+".name", "port name %q is already used by ports[%d]", p.Name, j)
			}
			names[p.Name] = i
		}
		w.Ports = append(w.Ports, p)
	}

	if h := raw.Health; h != nil {
		hc := &HealthCheck{TCP: h.TCP, Command: h.Command, Interval: DefaultHealthInterval,
			Timeout: DefaultHealthTimeout, Retries: DefaultHealthRetries}
		var kinds []string
		if h.HTTP != nil {
			kinds = append(kinds, "http")
			hc.HTTP = &HTTPCheck{Path: DefaultHealthHTTPPath, Port: h.HTTP.Port}
			if h.HTTP.Path != nil {
				hc.HTTP.Path = *h.HTTP.Path
			}
		}
		if h.TCP != nil {
			kinds = append(kinds, "tcp")
		}
		if h.Command != nil {
			kinds = append(kinds, "command")
			if len(h.Command) == 0 {
				fail("health.command", "health command must not be empty")
			}
		}
		switch len(kinds) {
		case 0:
			fail("health", "health needs one of http, tcp or command")
		case 1:
		default:
			fail("health", "health must have exactly one of http, tcp or command, found %s", strings.Join(kinds, " and "))
		}
		for _, d := range []struct {
			field string
			s     *string
			dst   *Duration
		}{{"interval", h.Interval, &hc.Interval}, {"timeout", h.Timeout, &hc.Timeout}, {"startPeriod", h.StartPeriod, &hc.StartPeriod}} {
			if d.s == nil {
				continue
			}
			dur, err := parseDuration(*d.s)
			if err != nil {
				fail("health."+d.field, "%v", err)
				continue
			}
			*d.dst = dur
		}
		if h.Retries != nil {
			hc.Retries = *h.Retries
		}
		w.Health = hc
	}

	w.Stateful = raw.Stateful
	if m := raw.Migrate; m != nil {
		w.Migration = Migration{Steps: slices.Clone(DefaultMigrationSteps), Interval: DefaultMigrationInterval}
		w.Migration.AllowUnsafe = m.AllowUnsafe
		if m.Steps != nil {
			w.Migration.Steps = m.Steps
			for i, st := range m.Steps {
				if i > 0 && st <= m.Steps[i-1] {
					fail("migration.steps", "steps must ascend: %d comes after %d", st, m.Steps[i-1])
					break
				}
			}
			if last := m.Steps[len(m.Steps)-1]; last != 100 {
				fail("migration.steps", "the last step must be 100 (the whole traffic), not %d", last)
			}
		}
		if m.Interval != nil {
			dur, err := parseDuration(*m.Interval)
			if err != nil {
				fail("migration.interval", "%v", err)
			} else {
				w.Migration.Interval = dur
			}
		}
	}

	if cpu := v.LookupPath(cue.ParsePath("resources.cpu")); cpu.Exists() {
		n, err := parseCPU(quantityText(cpu))
		if err != nil {
			fail("resources.cpu", "%v", err)
		}
		w.Resources.CPUMillis = n
	}
	if mem := v.LookupPath(cue.ParsePath("resources.memory")); mem.Exists() {
		n, err := parseMemory(quantityText(mem))
		if err != nil {
			fail("resources.memory", "%v", err)
		}
		w.Resources.MemoryBytes = n
	}
	return w, len(l.errs.errs) == nerr
}

// quantityText is a string value as is, a number as its decimal text.
func quantityText(v cue.Value) string {
	if s, err := v.String(); err == nil {
		return s
	}
	b, err := v.MarshalJSON()
	if err != nil {
		return v.IncompleteKind().String()
	}
	return string(b)
}

// clone returns a deep copy, so environments sharing a rendering cannot change each other's.
func (w *Workload) clone() Workload {
	c := *w
	c.Command = slices.Clone(w.Command)
	c.Args = slices.Clone(w.Args)
	c.Env = maps.Clone(w.Env)
	c.SecretEnv = maps.Clone(w.SecretEnv)
	c.Files = maps.Clone(w.Files)
	c.Ports = slices.Clone(w.Ports)
	for i, p := range c.Ports {
		if p.Endpoint != nil {
			e := *p.Endpoint
			c.Ports[i].Endpoint = &e
		}
	}
	c.Migration.Steps = slices.Clone(w.Migration.Steps)
	c.Pos = maps.Clone(w.Pos)
	if w.Health != nil {
		h := *w.Health
		h.Command = slices.Clone(w.Health.Command)
		if h.HTTP != nil {
			x := *h.HTTP
			h.HTTP = &x
		}
		if h.TCP != nil {
			x := *h.TCP
			h.TCP = &x
		}
		c.Health = &h
	}
	return c
}

// topSecrets is the top-level (and per-environment) field declaring secrets.
const topSecrets = "secrets"

type rawSecret struct {
	SOPS       *string           `json:"sops"`
	Key        *string           `json:"key"`
	AWS        *string           `json:"aws"`
	Kubernetes *KubernetesSecret `json:"kubernetes"`
	Nomad      *NomadSecret      `json:"nomad"`
	Vault      *VaultSecret      `json:"vault"`
	Azure      *AzureSecret      `json:"azure"`
	GCP        *GCPSecret        `json:"gcp"`
}

// baseSecret is a top-level secret: its value unified with #Secret, and its rendering once checked.
type baseSecret struct {
	v      cue.Value
	pos    map[string]Pos
	ok     bool
	secret Secret
}

// Shapes of secret references, checked with positioned errors; the providers rely on them.
var (
	// awsSecretsManagerRE is a Secrets Manager secret ARN, with ECS's optional ":json-key:version-stage:version-id".
	awsSecretsManagerRE = regexp.MustCompile(`^arn:aws(-[a-z]+)*:secretsmanager:[a-z]{2}(-[a-z]+)+-\d:\d{12}:secret:[A-Za-z0-9/_+=.@-]+(:[^:\s]*(:[^:\s]*(:[^:\s]*)?)?)?$`)
	// awsSSMRE is an SSM Parameter Store parameter ARN.
	awsSSMRE = regexp.MustCompile(`^arn:aws(-[a-z]+)*:ssm:[a-z]{2}(-[a-z]+)+-\d:\d{12}:parameter/[A-Za-z0-9_.\-/]+$`)
	// gcpSecretRE is "projects/PROJECT/secrets/SECRET": a project id or number, a secret id.
	gcpSecretRE      = regexp.MustCompile(`^projects/([a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]+)/secrets/[A-Za-z0-9_-]{1,255}$`)
	gcpVersionRE     = regexp.MustCompile(`^(latest|[1-9][0-9]*)$`)
	azureVaultRE     = regexp.MustCompile(`^[A-Za-z](-?[A-Za-z0-9])+$`)
	azureNameRE      = regexp.MustCompile(`^[A-Za-z0-9-]{1,127}$`)
	azureVersionRE   = regexp.MustCompile(`^[0-9a-f]{32}$`)
	kubernetesNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	kubernetesKeyRE  = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	storePathRE      = regexp.MustCompile(`^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$`)
	storeKeyRE       = regexp.MustCompile(`^[^\s]+$`)
	sopsKeySegmentRE = regexp.MustCompile(`^[^.\s]+$`)
)

// baseSecrets checks every top-level secret once; environments that do not touch one share its rendering.
func (l *loader) baseSecrets(v cue.Value, at Pos) map[string]*baseSecret {
	out := map[string]*baseSecret{}
	for _, f := range l.fields(v, topSecrets, at) {
		b := &baseSecret{pos: map[string]Pos{}}
		collectPos(f.v, "", b.pos)
		b.v = l.defs.secret.Unify(f.v)
		b.secret, b.ok = l.secret(f.name, b.v, b.pos, topSecrets+"."+f.name)
		out[f.name] = b
	}
	return out
}

// environmentSecrets sets env.Secrets to the top-level secrets unified with the environment's own (raw is the
// environment's value) and checks that every secret env's workloads use is declared. It reports whether all was
// well.
func (l *loader) environmentSecrets(name string, raw cue.Value, env *Environment, bases map[string]*baseSecret) bool {
	at := posOf(raw, Pos{})
	prefix := topEnvironments + "." + name + "." + topSecrets
	overrides := map[string]field{}
	for _, f := range l.fields(raw.LookupPath(cue.MakePath(cue.Str(topSecrets))), prefix, at) {
		overrides[f.name] = f
	}
	ok := true
	secrets := map[string]Secret{}
	for n, b := range bases {
		if _, over := overrides[n]; !over {
			if !b.ok {
				ok = false
				continue
			}
			secrets[n] = b.secret
		}
	}
	for _, n := range slices.Sorted(maps.Keys(overrides)) {
		over := overrides[n]
		pos := map[string]Pos{}
		merged := l.defs.secret
		if b := bases[n]; b != nil {
			maps.Copy(pos, b.pos)
			merged = b.v
		}
		collectPos(over.v, "", pos)
		pos[""] = posOf(over.v, at) // the environment's declaration is the one that counts
		merged = merged.Unify(over.v)
		s, sok := l.secret(n, merged, pos, prefix+"."+n)
		if !sok {
			ok = false
			continue
		}
		secrets[n] = s
	}
	if len(secrets) > 0 {
		env.Secrets = secrets
	}
	known := slices.Sorted(maps.Keys(secrets))
	for _, n := range slices.Sorted(maps.Keys(bases)) {
		if !bases[n].ok && !slices.Contains(known, n) {
			known = append(known, n) // declared, but wrong: its own error says so; do not report uses too
		}
	}
	for _, w := range env.Workloads {
		check := func(field, secret string) {
			if slices.Contains(known, secret) {
				return
			}
			declared := "no secret is declared"
			if len(known) > 0 {
				declared = "declared: " + strings.Join(known, ", ")
			}
			l.errs.add(nearest(w.Pos, field), topWorkloads+"."+w.Name+"."+quotePath(field),
				"secret %q is not declared for environment %s (%s)", secret, name, declared)
			ok = false
		}
		for _, k := range slices.Sorted(maps.Keys(w.SecretEnv)) {
			check("env."+k+".secret", w.SecretEnv[k])
		}
		for _, p := range slices.Sorted(maps.Keys(w.Files)) {
			check("files."+p+".secret", w.Files[p].Secret)
		}
	}
	return ok
}

// quotePath quotes the file path in a "files./run/x.secret" field path, CUE-style: files."/run/x".secret.
func quotePath(field string) string {
	if p, ok := strings.CutPrefix(field, "files."); ok {
		p = strings.TrimSuffix(p, ".secret")
		return fmt.Sprintf("files.%q.secret", p)
	}
	return field
}

// secret checks a secret value (unified with #Secret) and renders it: exactly one source, each reference of the
// shape its store expects.
func (l *loader) secret(name string, v cue.Value, pos map[string]Pos, path string) (Secret, bool) {
	nerr := len(l.errs.errs)
	s := Secret{Name: name, Pos: pos[""]}
	if err := v.Validate(cue.Concrete(true)); err != nil {
		l.errs.addCUE(err, cueOpts{prefix: strings.Split(path, "."), stripDef: true, at: pos[""], pos: pos})
		return s, false
	}
	var raw rawSecret
	if err := v.Decode(&raw); err != nil {
		l.errs.addCUE(err, cueOpts{prefix: strings.Split(path, "."), stripDef: true, at: pos[""]})
		return s, false
	}
	fail := func(field, format string, args ...any) {
		l.errs.add(nearest(pos, field), path+"."+field, format, args...)
	}
	var kinds []string
	if raw.SOPS != nil {
		kinds = append(kinds, SecretSOPS)
		f := *raw.SOPS
		if !insideRepo(f) {
			fail("sops", "sops file %q must be a clean relative path inside the repository, e.g. \"secrets/db.enc.yaml\"", f)
		}
		s.SOPS = &SOPSSecret{File: f}
		if raw.Key != nil {
			for _, seg := range strings.Split(*raw.Key, ".") {
				if !sopsKeySegmentRE.MatchString(seg) {
					fail("key", "key %q: want a dotted path of keys such as \"db.password\"", *raw.Key)
					break
				}
			}
			s.SOPS.Key = *raw.Key
		}
	} else if raw.Key != nil {
		fail("key", "key is a path into a sops file; it needs sops")
	}
	if raw.AWS != nil {
		kinds = append(kinds, SecretAWS)
		a := &AWSSecret{ARN: *raw.AWS}
		switch {
		case awsSecretsManagerRE.MatchString(a.ARN):
			a.Service = "secretsmanager"
		case awsSSMRE.MatchString(a.ARN):
			a.Service = "ssm"
		default:
			fail("aws", "aws %q: want a Secrets Manager ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME) or an SSM parameter ARN (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)", a.ARN)
		}
		s.AWS = a
	}
	if k := raw.Kubernetes; k != nil {
		kinds = append(kinds, SecretKubernetes)
		if len(k.Name) > 253 || !kubernetesNameRE.MatchString(k.Name) {
			fail("kubernetes.name", "kubernetes name %q: want a Secret name (lowercase letters, digits, '-' and '.')", k.Name)
		}
		if len(k.Key) > 253 || !kubernetesKeyRE.MatchString(k.Key) {
			fail("kubernetes.key", "kubernetes key %q: want a Secret data key (letters, digits, '-', '_' and '.')", k.Key)
		}
		s.Kubernetes = k
	}
	if n := raw.Nomad; n != nil {
		kinds = append(kinds, SecretNomad)
		l.storeRef(fail, "nomad", n.Path, n.Key, "nomad/jobs/web")
		s.Nomad = n
	}
	if vs := raw.Vault; vs != nil {
		kinds = append(kinds, SecretVault)
		l.storeRef(fail, "vault", vs.Path, vs.Key, "secret/data/db")
		s.Vault = vs
	}
	if a := raw.Azure; a != nil {
		kinds = append(kinds, SecretAzure)
		if len(a.Vault) < 3 || len(a.Vault) > 24 || !azureVaultRE.MatchString(a.Vault) {
			fail("azure.vault", "azure vault %q: want a Key Vault name (3 to 24 letters, digits and single '-', starting with a letter)", a.Vault)
		}
		if !azureNameRE.MatchString(a.Name) {
			fail("azure.name", "azure name %q: want a Key Vault secret name (1 to 127 letters, digits and '-')", a.Name)
		}
		if a.Version != "" && !azureVersionRE.MatchString(a.Version) {
			fail("azure.version", "azure version %q: want a Key Vault secret version (32 lowercase hex digits), or leave it out for the latest", a.Version)
		}
		s.Azure = a
	}
	if g := raw.GCP; g != nil {
		kinds = append(kinds, SecretGCP)
		switch {
		case strings.Contains(g.Name, "/versions/"):
			fail("gcp.name", "gcp name %q: give the version in version, not in the name", g.Name)
		case !gcpSecretRE.MatchString(g.Name):
			fail("gcp.name", "gcp name %q: want projects/PROJECT/secrets/SECRET", g.Name)
		}
		if !gcpVersionRE.MatchString(g.Version) {
			fail("gcp.version", "gcp version %q: want \"latest\" or a version number", g.Version)
		}
		s.GCP = g
	}
	switch len(kinds) {
	case 0:
		l.errs.add(pos[""], path, "secret %s needs one of sops, aws, kubernetes, nomad, vault, azure or gcp", name)
	case 1:
	default:
		l.errs.add(pos[""], path, "secret %s must have exactly one source, found %s", name, strings.Join(kinds, " and "))
	}
	return s, len(l.errs.errs) == nerr
}

// cleanAbs tells whether p is an absolute, clean slash path other than "/".
func cleanAbs(p string) bool { return path.IsAbs(p) && path.Clean(p) == p && p != "/" }

// insideRepo tells whether f is a clean, relative slash path that stays inside its root.
func insideRepo(f string) bool {
	return !path.IsAbs(f) && path.Clean(f) == f && f != "." && f != ".." && !strings.HasPrefix(f, "../") &&
		!strings.Contains(f, `\`)
}

// storeRef checks a {path, key} reference to a Nomad variable or a Vault secret.
func (l *loader) storeRef(fail func(field, format string, args ...any), kind, p, key, example string) {
	if !storePathRE.MatchString(p) {
		fail(kind+".path", "%s path %q: want a slash-separated path without spaces or leading '/', e.g. %q", kind, p, example)
	}
	if !storeKeyRE.MatchString(key) {
		fail(kind+".key", "%s key %q must not be empty or contain spaces", kind, key)
	}
}
