package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/registry"
	"github.com/berth-dev/berth/schema"
	"github.com/berth-dev/berth/schema/redact"
)

// Defaults of the registry look-ups of a pass.
const (
	// DefaultRegistryAttempts is how many times a transient registry error (5xx, 429, the network, a timeout) is
	// tried before the pass fails.
	DefaultRegistryAttempts = 4
	// DefaultRegistryBackoff is the wait after the first failed attempt; it doubles after each, ±10%.
	DefaultRegistryBackoff = 500 * time.Millisecond
)

// ImageResolver resolves an image reference to the digest of what it names: a manifest's, or an index's own for a
// multi-platform image, so that every platform pulls the same thing. A reference by digest is checked to exist and
// its digest given back. Errors of a kind that retrying cannot help wrap registry.ErrNotFound,
// registry.ErrUnauthorized or registry.ErrInvalid; any other error is transient. *registry.Client is one.
type ImageResolver interface {
	Digest(ctx context.Context, ref string) (string, error)
}

// RegistryAccess is how berth reaches one declared registry in a pass: its credentials, resolved from the
// repository's secrets, and whether it speaks plain HTTP.
type RegistryAccess struct {
	Host     string
	Username string
	// Password is the resolved value of the registry's password secret; nil for anonymous access.
	Password []byte
	Insecure bool
}

// Format prints a RegistryAccess without its password, whatever the verb.
func (a RegistryAccess) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "registry-access(%s %s insecure=%t)", a.Host, a.Username, a.Insecure)
}

// LogValue keeps the password out of structured logs.
func (a RegistryAccess) LogValue() slog.Value {
	return slog.GroupValue(slog.String("host", a.Host), slog.String("username", a.Username), slog.Bool("insecure", a.Insecure))
}

// NewRegistryClient is the client of the default Options.Registry: a *registry.Client that sends each declared
// registry its credentials and speaks plain HTTP to loopback and insecure hosts. Callers may set its HTTP client.
func NewRegistryClient(access map[string]RegistryAccess) *registry.Client {
	return &registry.Client{
		Credentials: func(host string) (string, string) {
			a := access[host]
			return a.Username, string(a.Password)
		},
		PlainHTTP: func(host string) bool { return registry.Loopback(host) || access[host].Insecure },
	}
}

// PinnedImage is one workload's image resolved to a digest at plan time.
type PinnedImage struct {
	Workload string `json:"workload"`
	Target   string `json:"target"`
	// Image is the reference as the repository wrote it; Pinned the reference every provider is given,
	// host/name:tag@sha256:..., and Digest its digest.
	Image  string `json:"image"`
	Pinned string `json:"pinned"`
	Digest string `json:"digest"`
}

// String is the plan's line for it: "web: image 127.0.0.1:5000/app:v1 → sha256:0123456789ab… (pinned)".
func (p PinnedImage) String() string {
	return fmt.Sprintf("%s: image %s → %s (pinned)", p.Workload, p.Image, shortDigest(p.Digest))
}

func shortDigest(d string) string {
	if alg, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12] + "…"
	}
	return d
}

// pins is what pinning the images of one environment gave.
type pins struct {
	// images by workload, for the workloads whose registry is declared and whose image resolved.
	images map[string]PinnedImage
	// problems are the workloads whose image cannot be resolved (missing, refused), at their image field.
	problems []Problem
	failed   map[string]error
	access   map[string]RegistryAccess
}

// apply returns ev's workloads with their pinned images.
func (ps *pins) apply(ev schema.Environment) schema.Environment {
	if len(ps.images) == 0 {
		return ev
	}
	ws := make([]schema.Workload, len(ev.Workloads))
	for i, w := range ev.Workloads {
		if p, ok := ps.images[w.Name]; ok {
			w.Image = p.Pinned
		}
		ws[i] = w
	}
	ev.Workloads = ws
	return ev
}

// auth is the credential a provider pulling image itself is given: the declared registry's, nil for anonymous.
func (ps *pins) auth(image string) *providers.RegistryAuth {
	a, ok := ps.access[schema.RegistryHost(image)]
	if !ok || a.Username == "" {
		return nil
	}
	return &providers.RegistryAuth{Server: a.Host, Username: a.Username, Password: slices.Clone(a.Password)}
}

// pin resolves the image of every workload of ev whose registry cfg declares. Images of other registries are left
// as written and no registry is contacted for them. A missing image or refused credentials is a problem of that
// workload; a transient failure that outlasts the retries is the error of the pass.
func (e *Engine) pin(ctx context.Context, cfg *schema.Config, ev schema.Environment) (*pins, error) {
	ps := &pins{images: map[string]PinnedImage{}, failed: map[string]error{}, access: map[string]RegistryAccess{}}
	if len(cfg.Registries) == 0 {
		return ps, nil
	}
	// Only the registries the environment's workloads use: a password no workload needs is not read.
	hosts := map[string][]schema.Workload{}
	for _, w := range ev.Workloads {
		if _, ok := cfg.RegistryFor(w.Image); ok {
			h := schema.RegistryHost(w.Image)
			hosts[h] = append(hosts[h], w)
		}
	}
	for _, h := range slices.Sorted(maps.Keys(hosts)) {
		a, err := e.registryAccess(ctx, cfg, ev, cfg.Registries[h])
		if err != nil {
			for _, w := range hosts[h] {
				ps.problems = append(ps.problems, Problem{Workload: w.Name, Target: w.Provider, Field: "image",
					Pos: w.Position("image"), Message: err.Error()})
				ps.failed[w.Name] = err
			}
			delete(hosts, h)
			continue
		}
		ps.access[h] = a
	}
	if len(hosts) == 0 {
		return ps, nil
	}
	res := e.resolver(ps.access)

	// Each distinct reference once, a few at a time.
	refs := map[string]bool{}
	for _, ws := range hosts {
		for _, w := range ws {
			refs[w.Image] = true
		}
	}
	list := slices.Sorted(maps.Keys(refs))
	digests := make([]string, len(list))
	errs := make([]error, len(list))
	idx := make([]int, len(list))
	for i := range idx {
		idx[i] = i
	}
	e.parallel(idx, func(i int) { digests[i], errs[i] = e.digest(ctx, res, list[i]) })
	byRef := map[string]int{}
	for i, r := range list {
		byRef[r] = i
	}
	var transient []error
	for _, h := range slices.Sorted(maps.Keys(hosts)) {
		for _, w := range hosts[h] {
			i := byRef[w.Image]
			if err := errs[i]; err != nil {
				if !registry.Permanent(err) {
					transient = append(transient, fmt.Errorf("workload %s: image %s: %w", w.Name, w.Image, err))
					continue
				}
				ps.problems = append(ps.problems, Problem{Workload: w.Name, Target: w.Provider, Field: "image",
					Pos: w.Position("image"), Message: imageMessage(w.Image, err)})
				ps.failed[w.Name] = err
				continue
			}
			pinned, err := pinnedRef(w.Image, digests[i])
			if err != nil {
				ps.problems = append(ps.problems, Problem{Workload: w.Name, Target: w.Provider, Field: "image",
					Pos: w.Position("image"), Message: imageMessage(w.Image, err)})
				ps.failed[w.Name] = err
				continue
			}
			ps.images[w.Name] = PinnedImage{Workload: w.Name, Target: w.Provider, Image: w.Image, Pinned: pinned, Digest: digests[i]}
		}
	}
	if len(transient) > 0 {
		return nil, fmt.Errorf("resolve images: %w", errors.Join(transient...))
	}
	return ps, nil
}

// imageMessage says why an image cannot be pinned.
func imageMessage(image string, err error) string {
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return fmt.Sprintf("image %s is not in its registry (no such repository or tag): %v", image, err)
	case errors.Is(err, registry.ErrUnauthorized):
		return fmt.Sprintf("image %s: the registry refuses berth's credentials (registries: username and password): %v", image, err)
	}
	return fmt.Sprintf("image %s cannot be resolved to a digest: %v", image, err)
}

// pinnedRef is image with digest: host/name:tag@digest (the tag "latest" when none is written).
func pinnedRef(image, digest string) (string, error) {
	r, err := registry.ParseReference(image)
	if err != nil {
		return "", err
	}
	if r.Digest != "" && r.Digest != digest {
		return "", fmt.Errorf("the registry gave digest %s for a reference by digest %s", digest, r.Digest)
	}
	// The host and name as written (docker.io's "library/" is docker's own reading).
	name := image
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	if r.Tag != "" && !strings.HasSuffix(name, ":"+r.Tag) {
		name += ":" + r.Tag
	}
	return name + "@" + digest, nil
}

// digest resolves ref with res, trying a transient failure again with backoff on the engine's clock.
func (e *Engine) digest(ctx context.Context, res ImageResolver, ref string) (string, error) {
	wait := e.opts.RegistryBackoff
	for attempt := 1; ; attempt++ {
		d, err := res.Digest(ctx, ref)
		if err == nil || registry.Permanent(err) || attempt >= e.opts.RegistryAttempts || ctx.Err() != nil {
			return d, err
		}
		e.log.Warn("registry look-up failed; trying again", "image", ref, "attempt", attempt, "err", err)
		t := e.opts.Clock.NewTimer(time.Duration(float64(wait) * (0.9 + 0.2*rand.Float64())))
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("%w (after: %w)", ctx.Err(), err)
		}
		wait *= 2
	}
}

// registryAccess resolves r's password (a declared secret of ev whose value berth reads) and registers it for
// redaction.
func (e *Engine) registryAccess(ctx context.Context, cfg *schema.Config, ev schema.Environment, r schema.Registry) (RegistryAccess, error) {
	a := RegistryAccess{Host: r.Host, Username: r.Username, Insecure: r.Insecure}
	if r.Password == "" {
		return a, nil
	}
	const variable = "REGISTRY_PASSWORD"
	// The password resolves as a workload's secret would: the same resolver, the same environment's declaration.
	w := schema.Workload{Name: "registry " + r.Host, SecretEnv: map[string]string{variable: r.Password},
		Pos: map[string]schema.Pos{"": r.Position(""), "env." + variable: r.Position("password.secret")}}
	ss, err := e.resolve(ctx, cfg, ev, w)
	if err != nil {
		return a, fmt.Errorf("registry %s: its password cannot be read: %w", r.Host, err)
	}
	s, ok := ss[r.Password]
	if !ok || s.Value == nil {
		return a, fmt.Errorf("%s: registry %s: password secret %s is a reference berth does not read; declare it with sops",
			r.Position("password.secret"), r.Host, r.Password)
	}
	// Already masked as a decrypted value; basic authentication's "user:password" in base64 too.
	redact.RegisterBasic(r.Username, string(s.Value))
	a.Password = s.Value
	return a, nil
}

// resolver returns the engine's ImageResolver for access, the same one while access does not change (its tokens
// are kept).
func (e *Engine) resolver(access map[string]RegistryAccess) ImageResolver {
	h := sha256.New()
	for _, host := range slices.Sorted(maps.Keys(access)) {
		a := access[host]
		fmt.Fprintf(h, "%s\x00%s\x00%x\x00%t\x00", strconv.Quote(host), a.Username, sha256.Sum256(a.Password), a.Insecure)
	}
	fp := hex.EncodeToString(h.Sum(nil))
	e.regMu.Lock()
	defer e.regMu.Unlock()
	if e.reg != nil && e.regFP == fp {
		return e.reg
	}
	e.reg, e.regFP = e.opts.Registry(maps.Clone(access)), fp
	return e.reg
}

// registryCache is the engine's current resolver and the fingerprint of the access it was made for.
type registryCache struct {
	regMu sync.Mutex
	reg   ImageResolver
	regFP string
}
