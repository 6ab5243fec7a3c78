package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/repos"
)

// Serve's defaults.
const (
	DefaultListen   = "127.0.0.1:7070"
	DefaultInterval = 30 * time.Second
	statusPath      = "/api/v1/status"
)

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
	var repo, branch, listen, dataDir string
	var interval time.Duration
	var ef engineFlags
	cmd := &cobra.Command{
		Use:   "serve --repo URL|PATH",
		Short: "Run the controller: keep the environments of a branch applied, continuously",
		Long: `Run the controller. It follows --branch of --repo (a Git URL: file://, http(s)://, ssh://; or a local
directory, watched for changes), and applies every environment bound to that branch whenever the branch moves, and
at least every --interval (which also repairs drift: replicas removed or stopped by hand). A revision that fails to
load or is denied by policy changes nothing that runs.

It serves /healthz, /readyz, /metrics (Prometheus) and ` + statusPath + ` (read by berth status) on --listen.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if repo == "" {
				return fmt.Errorf("--repo is required")
			}
			if interval <= 0 {
				return fmt.Errorf("--interval must be positive")
			}
			return serve(cmd.Context(), g, &ef, repo, branch, listen, dataDir, interval)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&repo, "repo", "", "Git URL or local directory to follow (required)")
	fl.StringVar(&branch, "branch", repos.DefaultBranch, "branch to follow; environments bound to it are applied")
	fl.DurationVar(&interval, "interval", DefaultInterval, "how often to poll the source and re-check what runs (±10% jitter)")
	fl.StringVar(&listen, "listen", DefaultListen, "address for health, metrics and the status API")
	fl.StringVar(&dataDir, "data-dir", defaultDataDir(), "where the state store and source cache live")
	ef.register(cmd)
	return cmd
}

func serve(ctx context.Context, g *globals, ef *engineFlags, repo, branch, listen, dataDir string, interval time.Duration) error {
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

	key := sha256.Sum256([]byte(g.instance + "\x00" + repo + "\x00" + branch))
	src, err := repos.Open(ctx, repo, repos.Options{
		Branch:   branch,
		CacheDir: filepath.Join(dataDir, "sources", hex.EncodeToString(key[:])[:16]),
		Logger:   log,
	})
	if err != nil {
		return err
	}
	defer src.Close()

	eng, err := ef.engine(g, store, metrics, true)
	if err != nil {
		return err
	}
	defer eng.Close()
	ctrl, err := reconciler.NewController(reconciler.ControllerOptions{
		Source:   src,
		Branch:   branch,
		Interval: interval,
		Engine:   eng,
		Logger:   log,
		Store:    store,
		Metrics:  metrics,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: apiHandler(ctrl, reg), ReadHeaderTimeout: 10 * time.Second}
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "source", src.String(), "branch", branch, "instance", g.instance)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- ctrl.Run(runCtx) }()

	select {
	case err = <-runErr:
	case err = <-httpErr:
		cancel()
		<-runErr
	}
	shutCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	_ = srv.Shutdown(shutCtx)
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// apiHandler serves health, readiness, metrics and the status API of a controller.
func apiHandler(ctrl *reconciler.Controller, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !ctrl.Ready() {
			http.Error(w, "not ready: first reconcile pass not finished", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET "+statusPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = writeJSON(w, ctrl.Status())
	})
	return mux
}
