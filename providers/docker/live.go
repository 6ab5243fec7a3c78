package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// imageDefaults are what an image gives a container that does not set them itself: the engine copies them into
// the container's config at create, so a value equal to them reads as "not set by berth".
type imageDefaults struct {
	entrypoint, cmd []string
	env             map[string]string
	health          *container.HealthConfig
}

func defaultsOf(img image.InspectResponse) imageDefaults {
	var d imageDefaults
	if c := img.Config; c != nil {
		d.entrypoint, d.cmd = c.Entrypoint, c.Cmd
		d.env = envMap(c.Env)
		if h := c.Healthcheck; h != nil {
			d.health = &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
				StartPeriod: h.StartPeriod, Retries: h.Retries}
		}
	}
	return d
}

func envMap(kvs []string) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// imageByID returns the defaults of the image with this ID, inspecting it once: an ID names immutable content.
func (p *Provider) imageByID(ctx context.Context, id string) (imageDefaults, error) {
	p.imgMu.Lock()
	d, ok := p.images[id]
	p.imgMu.Unlock()
	if ok {
		return d, nil
	}
	cctx, cancel := callCtx(ctx)
	img, err := p.cli.ImageInspect(cctx, id)
	cancel()
	if cerrdefs.IsNotFound(err) {
		return imageDefaults{}, nil // removed by force under a container: nothing reads as the image's
	}
	if err != nil {
		return imageDefaults{}, fmt.Errorf("inspect image %.19s: %w", id, err)
	}
	return p.remember("", img), nil
}

// remember caches an inspected image's defaults by ID and, when ref is set, which ID ref names now.
func (p *Provider) remember(ref string, img image.InspectResponse) imageDefaults {
	d := defaultsOf(img)
	p.imgMu.Lock()
	defer p.imgMu.Unlock()
	p.images[img.ID] = d
	if ref != "" {
		p.refs[ref] = img.ID
	}
	return d
}

// defaultsForRef returns the defaults of the image ref named when berth or a List last looked, if it did.
func (p *Provider) defaultsForRef(ref string) (imageDefaults, bool) {
	p.imgMu.Lock()
	defer p.imgMu.Unlock()
	d, ok := p.images[p.refs[ref]]
	return d, ok
}

// liveOf reads a container's workload from its own fields (see live), remembering which image its reference names.
func (p *Provider) liveOf(ctx context.Context, ci container.InspectResponse) (schema.Workload, error) {
	img, err := p.imageByID(ctx, ci.Image)
	if err != nil {
		return schema.Workload{}, fmt.Errorf("container %s: %w", ci.Name, err)
	}
	p.imgMu.Lock()
	if _, ok := p.refs[ci.Config.Image]; !ok {
		p.refs[ci.Config.Image] = ci.Image
	}
	p.imgMu.Unlock()
	return live(ci, img), nil
}

// live is the workload one container runs, read from the container's own fields, in the form readBack gives a
// desired workload (replicas left at 0: they are a count of containers). Image is the reference the container was
// created with; command, args and env leave out what equals the image's own Entrypoint, Cmd and Env; ports are the
// container ports published on the host (berth publishes each of them), public when the proxy configuration
// (LabelPublicPorts, which the background sync serves from) names them; resources are NanoCPUs and Memory; the
// health check is the engine's Healthcheck when it is not the image's, else the HTTP or TCP check berth's prober
// runs (LabelHealth). Secrets read back as names (SecretEnv, Files) from LabelSecrets, and the variables it names
// are left out of Env: their values are never read back.
func live(ci container.InspectResponse, img imageDefaults) schema.Workload {
	cfg := ci.Config
	w := schema.Workload{Name: cfg.Labels[providers.LabelWorkload], Image: cfg.Image}
	if !slices.Equal(cfg.Entrypoint, img.entrypoint) {
		w.Command = slices.Clone(cfg.Entrypoint)
	}
	if !slices.Equal(cfg.Cmd, img.cmd) {
		w.Args = slices.Clone(cfg.Cmd)
	}
	sl := providers.ParseSecretsRecord(cfg.Labels[LabelSecrets])
	for k, v := range envMap(cfg.Env) {
		if n, secret := sl.Env[k]; secret {
			// A secret's value: read back as its name (a variable removed by hand reads as gone).
			if w.SecretEnv == nil {
				w.SecretEnv = map[string]string{}
			}
			w.SecretEnv[k] = n
			continue
		}
		if iv, ok := img.env[k]; ok && iv == v {
			continue
		}
		if w.Env == nil {
			w.Env = map[string]string{}
		}
		w.Env[k] = v
	}
	public := map[int]int{}
	pub, _ := parsePublicPorts(cfg.Labels[LabelPublicPorts]) // a damaged label publishes nothing
	for _, m := range pub {
		public[m.ContainerPort] = m.HostPort
	}
	seen := map[schema.Port]bool{}
	if hc := ci.HostConfig; hc != nil {
		for np := range hc.PortBindings {
			seen[schema.Port{Port: np.Int(), Protocol: np.Proto()}] = true
		}
		w.Resources = schema.Resources{CPUMillis: hc.NanoCPUs / 1_000_000, MemoryBytes: hc.Memory}
	}
	for cp := range public {
		seen[schema.Port{Port: cp, Protocol: "tcp"}] = true // proxied even when no longer published
	}
	for port := range seen {
		if hp, ok := public[port.Port]; ok && port.Protocol == "tcp" {
			port.Public, port.HostPort = true, hp
		}
		w.Ports = append(w.Ports, port)
	}
	sortPorts(w.Ports)
	w.Health = liveHealth(cfg, img)
	for path, n := range sl.Files {
		if w.Files == nil {
			w.Files = map[string]schema.File{}
		}
		w.Files[path] = schema.File{Secret: n}
	}
	return providers.Normalize(w)
}

// liveHealth is the check a container is judged by: the engine's own Healthcheck when it is set and not the one
// the image brings, else the HTTP or TCP check of LabelHealth that berth probes, else none.
func liveHealth(cfg *container.Config, img imageDefaults) *schema.HealthCheck {
	if h := cfg.Healthcheck; h != nil && len(h.Test) > 0 && h.Test[0] != "NONE" && !sameHealth(h, img.health) {
		out := &schema.HealthCheck{Interval: schema.Duration(h.Interval), Timeout: schema.Duration(h.Timeout),
			Retries: h.Retries, StartPeriod: schema.Duration(h.StartPeriod)}
		switch h.Test[0] {
		case "CMD":
			out.Command = slices.Clone(h.Test[1:])
		case "CMD-SHELL":
			out.Command = append([]string{"/bin/sh", "-c"}, h.Test[1:]...)
		}
		return out
	}
	if s := cfg.Labels[LabelHealth]; s != "" {
		var h schema.HealthCheck
		if err := json.Unmarshal([]byte(s), &h); err == nil && (h.HTTP != nil || h.TCP != nil) {
			h.Command = nil
			return &h
		}
	}
	return nil
}

func sameHealth(a, b *container.HealthConfig) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.Test, b.Test) && a.Interval == b.Interval && a.Timeout == b.Timeout &&
		a.StartPeriod == b.StartPeriod && a.Retries == b.Retries
}

// sortPorts orders ports by number, then protocol: a container keeps its ports in a map, so this is the only order
// they read back in.
func sortPorts(ps []schema.Port) {
	slices.SortFunc(ps, func(a, b schema.Port) int {
		if a.Port != b.Port {
			return a.Port - b.Port
		}
		return strings.Compare(a.Protocol, b.Protocol)
	})
}

// withDefaults is h with the provider's defaults filled in, as the engine and berth's prober hold it.
func withDefaults(h *schema.HealthCheck) *schema.HealthCheck {
	if h == nil {
		return nil
	}
	c := *h
	if c.Interval <= 0 {
		c.Interval = schema.Duration(DefaultHealthInterval)
	}
	if c.Timeout <= 0 {
		c.Timeout = schema.Duration(DefaultHealthTimeout)
	}
	if c.Retries <= 0 {
		c.Retries = DefaultHealthRetries
	}
	return &c
}

// Normalize is the form in which a container reads a workload back: port names dropped (the engine stores none),
// ports sorted by number and protocol, the health check's defaults filled in, and, when the image is known (from
// a List or an Apply that used it), command, args and env values equal to the image's own left out.
func (p *Provider) Normalize(w schema.Workload) schema.Workload {
	img, _ := p.defaultsForRef(w.Image)
	return readBack(w, img)
}

// readBack is the form in which a container made for w from an image with these defaults reads back.
func readBack(w schema.Workload, img imageDefaults) schema.Workload {
	w = providers.Normalize(w)
	if len(w.Ports) > 0 {
		ps := slices.Clone(w.Ports)
		for i := range ps {
			ps[i].Name = ""
		}
		sortPorts(ps)
		w.Ports = ps
	}
	w.Health = withDefaults(w.Health)
	if w.Command != nil && slices.Equal(w.Command, img.entrypoint) {
		w.Command = nil
	}
	if w.Args != nil && slices.Equal(w.Args, img.cmd) {
		w.Args = nil
	}
	if len(w.Env) > 0 {
		env := maps.Clone(w.Env)
		for k, v := range env {
			if iv, ok := img.env[k]; ok && iv == v {
				delete(env, k)
			}
		}
		w.Env = env
	}
	return providers.Normalize(w)
}

// liveHash is the fingerprint of a read-back workload: equal for two containers exactly when every field berth
// manages (replicas aside) reads the same.
func liveHash(w schema.Workload) string { return providers.SpecHash(w) }
