package schema

import (
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
)

// topRegistries is the top-level field declaring the container registries berth resolves images from.
const topRegistries = "registries"

// Registry is one entry of the repository's `registries:` section: a container registry whose image tags berth
// resolves to digests at plan time (pinning), with the credentials it reads them with and, for runtimes that pull
// with what berth gives them, pulls them with. Images of registries not declared are never looked up.
type Registry struct {
	// Host is the registry's host[:port] as image references name it ("ghcr.io", "127.0.0.1:5000").
	Host string `json:"host"`
	// Username and Password (the name of a declared secret whose value berth reads: a SOPS secret) are the
	// credentials; both or neither are set. Never the password's value.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// Insecure speaks plain HTTP to the registry (loopback hosts always are).
	Insecure bool `json:"insecure,omitempty"`
	// Pos maps a field path relative to the entry ("username", "password.secret", "" for the entry) to where it
	// was set.
	Pos map[string]Pos `json:"-"`
}

// Position returns where the field path was set, falling back to the entry itself.
func (r Registry) Position(field string) Pos { return nearest(r.Pos, field) }

// RegistryHost is the registry host of an image reference, as docker reads one: the first part of the name when it
// has a dot or a colon or is "localhost", else "docker.io". It is "" for a reference that names no repository.
func RegistryHost(image string) string {
	name := image
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	i := strings.IndexByte(name, '/')
	if i < 0 {
		if name == "" {
			return ""
		}
		return "docker.io"
	}
	if first := name[:i]; strings.ContainsAny(first, ".:") || first == "localhost" {
		return first
	}
	return "docker.io"
}

// RegistryFor returns the declared registry of image's host and whether there is one.
func (c *Config) RegistryFor(image string) (Registry, bool) {
	if c == nil {
		return Registry{}, false
	}
	r, ok := c.Registries[RegistryHost(image)]
	return r, ok
}

// registryHostRE is a registry host as image references name it: a DNS name or a bracketed IPv6 address, with an
// optional port; it must have a dot or a port, or be localhost, or docker would read it as a repository.
var registryHostRE = regexp.MustCompile(`^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$`)

type rawRegistry struct {
	Username *string    `json:"username"`
	Password *SecretUse `json:"password"`
	Insecure *bool      `json:"insecure"`
}

// SecretUse is a reference to a declared secret by name, as `password: secret: "registry"` writes it.
type SecretUse struct {
	Secret string `json:"secret"`
}

// registries checks and renders the `registries:` section v (absent: nil), keyed by host.
func (l *loader) registries(v cue.Value, first Pos) map[string]Registry {
	if !v.Exists() {
		return nil
	}
	at := posOf(v, first)
	if v.IncompleteKind() != cue.StructKind {
		l.errs.add(at, topRegistries, "must be a struct of registries by host, e.g. registries: \"ghcr.io\": {username: \"me\", password: secret: \"ghcr\"}, not %s", v.IncompleteKind())
		return nil
	}
	out := map[string]Registry{}
	it, _ := v.Fields()
	for it.Next() {
		host := it.Selector().Unquoted()
		path := topRegistries + "." + strconv.Quote(host)
		raw := it.Value()
		pos := map[string]Pos{}
		collectPos(raw, "", pos)
		if _, ok := pos[""]; !ok {
			pos[""] = posOf(raw, at)
		}
		fail := func(field, format string, args ...any) {
			p := path
			if field != "" {
				p += "." + field
			}
			l.errs.add(nearest(pos, field), p, format, args...)
		}
		nerr := len(l.errs.errs)
		first := strings.SplitN(host, "/", 2)[0]
		switch {
		case strings.Contains(host, "/") || strings.Contains(host, "://"):
			fail("", "registry %q: want a host with an optional port as image references name it (%q), without a scheme or a path", host, first)
		case !registryHostRE.MatchString(host) || !(strings.ContainsAny(host, ".:") || host == "localhost"):
			fail("", "registry %q: want a registry host as image references name it: a name with a dot (\"ghcr.io\"), a host:port (\"127.0.0.1:5000\") or \"localhost\"", host)
		}
		u := l.defs.registry.Unify(raw)
		if err := u.Validate(cue.Concrete(true)); err != nil {
			l.errs.addCUE(err, cueOpts{prefix: []string{topRegistries, strconv.Quote(host)}, stripDef: true, at: pos[""], pos: pos})
			continue
		}
		var rr rawRegistry
		if err := u.Decode(&rr); err != nil {
			l.errs.addCUE(err, cueOpts{prefix: []string{topRegistries, strconv.Quote(host)}, stripDef: true, at: pos[""]})
			continue
		}
		r := Registry{Host: host, Pos: pos}
		if rr.Username != nil {
			r.Username = *rr.Username
		}
		if rr.Password != nil {
			r.Password = rr.Password.Secret
		}
		if rr.Insecure != nil {
			r.Insecure = *rr.Insecure
		}
		switch {
		case r.Username != "" && r.Password == "":
			fail("username", "username needs a password: password: secret: \"<a declared secret>\"")
		case r.Username == "" && r.Password != "":
			fail("password", "password needs a username")
		}
		if len(l.errs.errs) == nerr {
			out[host] = r
		}
	}
	return out
}

// checkRegistrySecrets checks that every environment declares the registries' password secrets, from a source
// berth reads the value of (SOPS): the password is sent to the registry by berth itself, not by a runtime.
func (l *loader) checkRegistrySecrets(cfg *Config) {
	for _, host := range slices.Sorted(maps.Keys(cfg.Registries)) {
		r := cfg.Registries[host]
		if r.Password == "" {
			continue
		}
		path := topRegistries + "." + strconv.Quote(host) + ".password.secret"
		at := r.Position("password.secret")
		for _, en := range slices.Sorted(maps.Keys(cfg.Environments)) {
			s, ok := cfg.Environments[en].Secrets[r.Password]
			switch {
			case !ok:
				declared := "no secret is declared"
				if ss := cfg.Environments[en].Secrets; len(ss) > 0 {
					declared = "declared: " + strings.Join(slices.Sorted(maps.Keys(ss)), ", ")
				}
				l.errs.add(at, path, "secret %q is not declared for environment %s (%s)", r.Password, en, declared)
			case s.Kind() != SecretSOPS:
				l.errs.add(at, path, "secret %q of environment %s is a %s reference: berth sends a registry's password itself and reads only sops secrets' values; declare it with sops", r.Password, en, s.Kind())
			}
		}
	}
}
