package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/reconciler/preview"
	"github.com/berth-dev/berth/repos"
	"github.com/berth-dev/berth/repos/webhook"
	"github.com/berth-dev/berth/schema"
	"github.com/berth-dev/berth/schema/redact"
)

// Serve's defaults.
const (
	DefaultListen   = "127.0.0.1:7070"
	DefaultInterval = 30 * time.Second
	statusPath      = "/api/v1/status"
	// serveShutdownGrace bounds serve's shutdown after SIGINT or SIGTERM; berth exits one second after it at the
	// latest.
	serveShutdownGrace = 10 * time.Second
)

// ServerStatus is what /api/v1/status answers: one entry per followed source.
type ServerStatus struct {
	Sources []reconciler.Status `json:"sources"`
}

// defaultDataDir is where serve keeps its state store and source cache: $XDG_STATE_HOME/berth, else
// ~/.local/state/berth.
func defaultDataDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "berth")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "berth")
	}
	return filepath.Join(os.TempDir(), "berth")
}

func newServeCmd(g *globals) *cobra.Command {
	var repo, branch, listen, dataDir, configPath string
	var interval time.Duration
	var ef engineFlags
	cmd := &cobra.Command{
		Use:   "serve (--repo URL|PATH | --config FILE)",
		Short: "Run the controller: keep the environments of a branch applied, continuously",
		Long: `Run the controller. It follows --branch of --repo (a Git URL: file://, http(s)://, ssh://; or a local
directory, watched for changes), and applies every environment bound to that branch whenever the branch moves, and
at least every --interval (which also repairs drift: replicas removed or stopped by hand). A revision that fails to
load or is denied by policy changes nothing that runs.

With --config, a CUE file lists several sources, each with its branch, path, credentials (references to files or
environment variables), signature policy and webhook; see docs/sources.md. Flags set explicitly override the
file's instance, listen address and data directory.

It serves /healthz, /readyz, /metrics (Prometheus), ` + statusPath + ` (read by berth status) and, for sources with a
webhook, /hooks/<source> on --listen.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			var sc *schema.ServeConfig
			switch {
			case configPath != "" && repo != "":
				return fmt.Errorf("give --repo or --config, not both")
			case configPath != "":
				if fl.Changed("branch") || fl.Changed("interval") {
					return fmt.Errorf("--branch and --interval go with --repo; with --config, set them per source")
				}
				var err error
				if sc, err = schema.LoadServeConfig(configPath); err != nil {
					var es schema.Errors
					if errors.As(err, &es) {
						return fmt.Errorf("%s: %d error(s):\n%w", configPath, len(es), es)
					}
					return err
				}
				if sc.Instance != "" && !cmd.Flags().Changed("instance") {
					g.instance = sc.Instance
				}
				if sc.Listen != "" && !fl.Changed("listen") {
					listen = sc.Listen
				}
				if sc.DataDir != "" && !fl.Changed("data-dir") {
					dataDir = sc.DataDir
				}
				if sc.Secrets != nil && sc.Secrets.AgeIdentities != nil && !fl.Changed("age-identities") {
					ef.identities = sc.Secrets.AgeIdentities
				}
				if sc.Evaluation.Timeout > 0 && !fl.Changed("eval-timeout") {
					g.eval.Timeout = sc.Evaluation.Timeout
				}
				if sc.Evaluation.Memory > 0 && !fl.Changed("eval-memory") {
					g.eval.Memory = sc.Evaluation.Memory
				}
			case repo != "":
				if interval <= 0 {
					return fmt.Errorf("--interval must be positive")
				}
				sc = &schema.ServeConfig{Sources: []schema.SourceConfig{{Name: "default", URL: repo, Branch: branch,
					Interval: interval, Timeout: schema.DefaultSourceTimeout}}}
			default:
				return fmt.Errorf("--repo or --config is required")
			}
			signalGrace.Store(int64(serveShutdownGrace + time.Second))
			return serve(cmd.Context(), g, &ef, sc, listen, dataDir)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&repo, "repo", "", "Git URL or local directory to follow")
	fl.StringVar(&configPath, "config", "", "controller configuration file (CUE) listing the sources to follow")
	fl.StringVar(&branch, "branch", repos.DefaultBranch, "branch to follow; environments bound to it are applied")
	fl.DurationVar(&interval, "interval", DefaultInterval, "how often to poll the source and re-check what runs (±10% jitter)")
	fl.StringVar(&listen, "listen", DefaultListen, "address for health, metrics, the status API and webhooks")
	fl.StringVar(&dataDir, "data-dir", defaultDataDir(), "where the state store and source cache live")
	ef.register(cmd)
	return cmd
}

// followed is one source the controller follows.
type followed struct {
	cfg  schema.SourceConfig
	src  repos.Source
	ctrl *reconciler.Controller
	hook *webhook.Hook
	// With a forge: the previews of its pull requests and the statuses of its deploys.
	previews *preview.Controller
	statuses *deployStatuses
}

func serve(ctx context.Context, g *globals, ef *engineFlags, sc *schema.ServeConfig, listen, dataDir string) error {
	log := g.logger()
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	store, err := reconciler.OpenStore(filepath.Join(dataDir, g.instance+".db"))
	if err != nil {
		return err
	}
	defer store.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := reconciler.NewMetrics(reg)

	eng, err := ef.engine(g, store, metrics, true)
	if err != nil {
		return err
	}
	defer eng.Close()

	// Each snapshot is evaluated in a child process under the limits; a shutdown kills a running one at once.
	ev, err := schema.NewEvaluator(g.eval)
	if err != nil {
		return err
	}
	claims := reconciler.NewClaims()
	pmetrics := preview.NewMetrics(reg)
	var router *preview.Router
	routerPort := 0
	for _, cfg := range sc.Sources {
		if cfg.Forge != nil && sc.Previews.Listen != "" && router == nil {
			router = preview.NewRouter()
			port, stop, err := startRouter(ctx, sc.Previews.Listen, router, log)
			if err != nil {
				return err
			}
			defer stop(context.Background())
			routerPort = port
		}
	}
	var hostKey []byte
	withForge := ""
	for _, cfg := range sc.Sources {
		if cfg.Forge == nil {
			continue
		}
		if withForge != "" {
			return fmt.Errorf("%s: sources.%s.forge: source %s has a forge too; previews are named pr-<N> per instance, so "+
				"two repositories' pull request 42 would share one environment: run one berth instance (--instance) per "+
				"repository with previews", cfg.Forge.Pos, cfg.Name, withForge)
		}
		withForge = cfg.Name
	}
	var sources []*followed
	defer func() {
		for _, f := range sources {
			f.src.Close()
		}
	}()
	for _, cfg := range sc.Sources {
		f, err := openFollowed(ctx, g, cfg, dataDir, log)
		if err != nil {
			return err
		}
		sources = append(sources, f)
		load := func(ctx context.Context, dir string) (*schema.Config, error) {
			return ev.Load(ctx, dir, "source "+cfg.Name)
		}
		var onEnv func(reconciler.EnvironmentStatus)
		if cfg.Forge != nil {
			fg, err := openForge(cfg.Forge, forgeObserver{pmetrics})
			if err != nil {
				return fmt.Errorf("source %s: %w", cfg.Name, err)
			}
			if hostKey == nil {
				if hostKey, err = previewKey(dataDir); err != nil {
					return err
				}
			}
			f.statuses = newDeployStatuses(fg, g.instance, log.With("source", cfg.Name))
			onEnv = f.statuses.observe
			f.previews, err = preview.New(preview.Options{Name: cfg.Name, Instance: g.instance, Source: f.src,
				Path: cfg.Path, Forge: fg, Engine: eng, LoadContext: load, Interval: cfg.Forge.Interval,
				Logger: log.With("source", cfg.Name, "previews", true), Metrics: pmetrics, Router: router,
				RouterPort: routerPort, Scheme: sc.Previews.URLScheme, Domain: sc.Previews.Domain,
				Ports: preview.PortRange{From: sc.Previews.PortsFrom, To: sc.Previews.PortsTo}, HostKey: hostKey,
				PlanComments: true})
			if err != nil {
				return fmt.Errorf("source %s: %w", cfg.Name, err)
			}
		}
		f.ctrl, err = reconciler.NewController(reconciler.ControllerOptions{
			Name:          cfg.Name,
			Source:        f.src,
			Branch:        cfg.Branch,
			Environments:  cfg.Environments,
			Path:          cfg.Path,
			Claims:        claims,
			Interval:      cfg.Interval,
			Engine:        eng,
			Logger:        log.With("source", cfg.Name),
			Store:         store,
			Metrics:       metrics,
			LoadContext:   load,
			OnEnvironment: onEnv,
		})
		if err != nil {
			return err
		}
	}

	var hooks []webhook.Hook
	byName := map[string]*followed{}
	for _, f := range sources {
		byName[f.cfg.Name] = f
		if f.hook != nil {
			hooks = append(hooks, *f.hook)
		}
	}
	receiver, err := webhook.New(hooks, func(source string) {
		if f := byName[source]; f != nil {
			f.ctrl.Trigger() // a webhook only makes the source look sooner; its payload is never trusted
		}
	}, webhook.Options{Metrics: reg, Logger: log, OnEvent: func(e webhook.Event) {
		// Pull-request, comment and status events (and pushes: the base may have moved) wake the preview loop,
		// which reads the forge again.
		if f := byName[e.Source]; f != nil && f.previews != nil && e.Kind != webhook.EventOther {
			f.previews.Trigger()
		}
	}})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: apiHandler(sources, reg, receiver), ReadHeaderTimeout: 10 * time.Second}
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(ln) }()
	for _, f := range sources {
		log.Info("following", "source", f.cfg.Name, "location", f.src.String(), "branch", f.cfg.Branch, "tag", f.cfg.Tag, "path", f.cfg.Path)
	}
	log.Info("serving", "addr", ln.Addr().String(), "instance", g.instance, "sources", len(sources))

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	runErr := make(chan error, 2*len(sources))
	for _, f := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.ctrl.Run(runCtx); err != nil {
				runErr <- fmt.Errorf("source %s: %w", f.cfg.Name, err)
			}
		}()
		if f.previews != nil {
			wg.Add(2)
			go func() {
				defer wg.Done()
				if err := f.previews.Run(runCtx); err != nil {
					runErr <- fmt.Errorf("source %s: previews: %w", f.cfg.Name, err)
				}
			}()
			go func() {
				defer wg.Done()
				f.statuses.run(runCtx)
			}()
		}
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()

	select {
	case <-allDone:
	case err = <-runErr:
	case err = <-httpErr:
	}
	cancel()
	// The grace period bounds the whole shutdown: the controllers' passes (a running evaluation is killed at
	// once; provider calls end with the context), then the HTTP server.
	shutCtx, done := context.WithTimeout(context.Background(), serveShutdownGrace)
	defer done()
	select {
	case <-allDone:
	case <-shutCtx.Done():
		log.Warn("controllers still busy at the end of the grace period; stopping anyway", "grace", serveShutdownGrace)
	}
	_ = srv.Shutdown(shutCtx)
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// openFollowed reads a source's credentials, keys and webhook secret from where the configuration points, and
// opens it. Errors name the configuration field, never a value.
func openFollowed(ctx context.Context, g *globals, cfg schema.SourceConfig, dataDir string, log *slog.Logger) (*followed, error) {
	key := sha256.Sum256([]byte(g.instance + "\x00" + cfg.Name + "\x00" + cfg.URL + "\x00" + cfg.Branch + "\x00" + cfg.Tag))
	opts := repos.Options{
		Branch:          cfg.Branch,
		Tag:             cfg.Tag,
		CacheDir:        filepath.Join(dataDir, "sources", hex.EncodeToString(key[:])[:16]),
		Timeout:         cfg.Timeout,
		MaxFileSize:     cfg.MaxFileSize,
		MaxFetchSize:    cfg.MaxFetchSize,
		MaxSnapshotSize: cfg.MaxSnapshotSize,
		ProxyURL:        cfg.Proxy,
		Logger:          log.With("source", cfg.Name),
	}
	read := func(r *schema.SecretRef) (repos.Secret, error) {
		if r == nil {
			return "", nil
		}
		b, err := r.Read()
		return repos.Secret(b), err
	}
	if c := cfg.Credentials; c != nil {
		creds := &repos.Credentials{Username: c.Username}
		for _, x := range []struct {
			ref *schema.SecretRef
			dst *repos.Secret
		}{{c.Password, &creds.Password}, {c.Token, &creds.BearerToken}, {c.SSHKey, &creds.SSHKey},
			{c.SSHKeyPassphrase, &creds.SSHKeyPassphrase}} {
			v, err := read(x.ref)
			if err != nil {
				return nil, err
			}
			*x.dst = v
		}
		if c.KnownHosts != nil {
			kh, err := c.KnownHosts.Read()
			if err != nil {
				return nil, err
			}
			creds.KnownHosts = kh
		}
		opts.Credentials = creds
	}
	if cfg.CAFile != "" {
		ca, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: sources.%s.caFile: %w", cfg.Pos, cfg.Name, err)
		}
		opts.CABundle = ca
	}
	if v := cfg.Verify; v != nil {
		pol := &repos.VerifyPolicy{Mode: repos.VerifyMode(v.Mode)}
		for _, x := range []struct {
			refs []schema.SecretRef
			dst  *[]string
		}{{v.OpenPGPKeys, &pol.OpenPGPKeys}, {v.SSHKeys, &pol.SSHKeys}} {
			for i := range x.refs {
				b, err := x.refs[i].Read()
				if err != nil {
					return nil, err
				}
				*x.dst = append(*x.dst, string(b))
			}
		}
		opts.Verify = pol
	}
	f := &followed{cfg: cfg}
	if w := cfg.Webhook; w != nil {
		secret, err := w.Secret.Read()
		if err != nil {
			return nil, err
		}
		kind := webhook.Kind(w.Kind)
		if w.Kind == "forgejo" {
			kind = webhook.Gitea
		}
		f.hook = &webhook.Hook{Source: cfg.Name, Kind: kind, Secret: secret, Rate: w.Rate, Burst: w.Burst}
	}
	src, err := repos.Open(ctx, cfg.URL, opts)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", cfg.Name, err)
	}
	f.src = src
	return f, nil
}

// apiHandler serves health, readiness, metrics, the status API and the webhooks.
func apiHandler(sources []*followed, reg *prometheus.Registry, hooks http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		for _, f := range sources {
			if !f.ctrl.Ready() {
				http.Error(w, "not ready: source "+f.cfg.Name+" has not finished its first pass", http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET "+statusPath, func(w http.ResponseWriter, r *http.Request) {
		st := ServerStatus{Sources: make([]reconciler.Status, 0, len(sources))}
		for _, f := range sources {
			st.Sources = append(st.Sources, f.ctrl.Status())
		}
		// The status quotes errors from sources, servers and providers: masked as encoded, in one place.
		var b bytes.Buffer
		if err := writeJSON(&b, st); err != nil {
			http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, redact.String(b.String()))
	})
	mux.HandleFunc("GET "+previewsPath, previewsHandler(func() []*preview.Controller {
		var out []*preview.Controller
		for _, f := range sources {
			if f.previews != nil {
				out = append(out, f.previews)
			}
		}
		return out
	}))
	mux.Handle(webhook.PathPrefix, hooks)
	return mux
}
