package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/reconciler/preview"
	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/repos/forge/gitea"
	"github.com/berth-dev/berth/repos/forge/github"
	"github.com/berth-dev/berth/repos/forge/gitlab"
	"github.com/berth-dev/berth/schema"
	"github.com/berth-dev/berth/schema/redact"
)

const previewsPath = "/api/v1/previews"

// ServerPreviews is what /api/v1/previews answers: one report per source with a forge.
type ServerPreviews struct {
	Sources []preview.Report `json:"sources"`
}

// openForge connects to the forge of a source, with its credentials read from where the configuration points.
func openForge(cfg *schema.ForgeConfig, obs forge.Observer) (forge.Forge, error) {
	var rt http.RoundTripper
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: forge.caFile: %w", cfg.Pos, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: forge.caFile: no PEM certificate in it", cfg.Pos)
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		rt = t
	}
	token := ""
	if cfg.Token != nil {
		b, err := cfg.Token.Read()
		if err != nil {
			return nil, err
		}
		token = strings.TrimSpace(string(b))
	}
	switch cfg.Kind {
	case schema.ForgeGitHub:
		o := github.Options{BaseURL: cfg.URL, Repository: cfg.Repository, Token: token, Timeout: cfg.Timeout,
			Transport: rt, Observer: obs}
		if cfg.App != nil {
			key, err := cfg.App.PrivateKey.Read()
			if err != nil {
				return nil, err
			}
			o.App = &github.App{ID: cfg.App.ID, InstallationID: cfg.App.Installation, PrivateKey: key}
		}
		return github.New(o)
	case schema.ForgeGitLab:
		var hc *http.Client
		if rt != nil {
			hc = &http.Client{Transport: rt}
		}
		return gitlab.New(gitlab.Options{BaseURL: cfg.URL, Project: cfg.Repository, Token: token, Timeout: cfg.Timeout,
			HTTPClient: hc, Observer: obs})
	case schema.ForgeGitea, schema.ForgeForgejo:
		var hc *http.Client
		if rt != nil {
			hc = &http.Client{Transport: rt}
		}
		return gitea.New(gitea.Options{BaseURL: cfg.URL, Repository: cfg.Repository, Token: token, Timeout: cfg.Timeout,
			HTTPClient: hc, Observer: obs})
	}
	return nil, fmt.Errorf("%s: forge.kind %q is not known", cfg.Pos, cfg.Kind)
}

// forgeObserver feeds the preview metrics from the forge clients.
type forgeObserver struct{ m *preview.Metrics }

func (o forgeObserver) Request(f, op string, code int)    { o.m.Request(f, op, code) }
func (o forgeObserver) RateLimit(f string, remaining int) { o.m.RateLimit(f, remaining) }

// previewKey is the key of the random part of preview host names, kept in the data directory so that a preview's
// URL survives a restart.
func previewKey(dataDir string) ([]byte, error) {
	p := filepath.Join(dataDir, "preview-host.key")
	b, err := os.ReadFile(p)
	if err == nil && len(b) >= 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("preview host key: %w", err)
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		return nil, fmt.Errorf("preview host key: %w", err)
	}
	return b, nil
}

var hexSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// deployStatuses sets a commit status on every deployed commit of an ordinary environment: pending while it is
// applied, success once ready, failure when it failed or was blocked. The latest status per environment is posted
// by one goroutine, so the controller never waits on the forge; an unchanged one sends nothing (the forge client
// deduplicates).
type deployStatuses struct {
	f        forge.Forge
	instance string
	log      *slog.Logger

	mu      sync.Mutex
	pending map[string]forge.Status
	wake    chan struct{}
}

func newDeployStatuses(f forge.Forge, instance string, log *slog.Logger) *deployStatuses {
	return &deployStatuses{f: f, instance: instance, log: log, pending: map[string]forge.Status{}, wake: make(chan struct{}, 1)}
}

// observe is the controller's OnEnvironment hook.
func (d *deployStatuses) observe(es reconciler.EnvironmentStatus) {
	if !hexSHA.MatchString(es.LastAttemptedRevision) {
		return // not a Git commit (a plain directory's content hash)
	}
	s := forge.Status{SHA: es.LastAttemptedRevision, Context: "berth/" + d.instance + "/" + es.Name}
	switch es.Phase {
	case reconciler.PhaseReady:
		s.State, s.Description = forge.StatusSuccess, "deployed to "+es.Name
	case reconciler.PhaseProgressing:
		s.State, s.Description = forge.StatusPending, "deploying to "+es.Name
	default:
		s.State, s.Description = forge.StatusFailure, strings.ToLower(es.Phase)+" in "+es.Name
		if len(es.Errors) > 0 {
			s.Description += ": " + es.Errors[0].Message
		}
	}
	s.Description = redact.String(s.Description)
	if len(s.Description) > 140 {
		s.Description = s.Description[:137] + "..."
	}
	d.mu.Lock()
	d.pending[es.Name] = s
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *deployStatuses) run(ctx context.Context) {
	posted := map[string]forge.Status{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		}
		d.mu.Lock()
		batch := d.pending
		d.pending = map[string]forge.Status{}
		d.mu.Unlock()
		for env, s := range batch {
			if posted[env] == s {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := d.f.SetStatus(cctx, s)
			cancel()
			if err != nil {
				d.log.Warn("deploy status", "env", env, "err", err)
				continue
			}
			posted[env] = s
		}
	}
}

// previewsHandler answers /api/v1/previews.
func previewsHandler(ctrls func() []*preview.Controller) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		out := ServerPreviews{Sources: []preview.Report{}}
		for _, c := range ctrls() {
			out.Sources = append(out.Sources, c.Report())
		}
		var b bytes.Buffer
		if err := writeJSON(&b, out); err != nil {
			http.Error(w, "previews: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, redact.String(b.String()))
	}
}

func newPreviewsCmd(g *globals) *cobra.Command {
	var server string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "previews",
		Short: "List the pull-request previews of a running controller",
		Long: `List the pull-request previews of a running berth serve: per source, each pull request's preview environment, its
state (discovered, awaiting-approval, gated, queued, applying, ready, failed, expiring, destroying, gone), why, its
head commit and URLs. It reads ` + previewsPath + ` on --server.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(server, "/")+previewsPath, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("previews: %w", err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("previews: %s: %s", resp.Status, strings.TrimSpace(string(body)))
			}
			if asJSON {
				_, err := cmd.OutOrStdout().Write(body)
				return err
			}
			var all ServerPreviews
			if err := json.Unmarshal(body, &all); err != nil {
				return fmt.Errorf("previews: the answer does not parse: %w", err)
			}
			writePreviews(cmd.OutOrStdout(), &all)
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "http://"+DefaultListen, "address of the running controller")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	return cmd
}

func writePreviews(w io.Writer, all *ServerPreviews) {
	if len(all.Sources) == 0 {
		fmt.Fprintln(w, "No source has a forge configured: no previews.")
		return
	}
	for _, r := range all.Sources {
		state := "enabled, from " + r.From
		if !r.Enabled {
			state = "not configured on the base branch (previews: pr:)"
		}
		fmt.Fprintf(w, "Source %s (%s): previews %s\n", r.Name, r.Forge, state)
		if r.LastError != "" {
			fmt.Fprintf(w, "  last error: %s\n", r.LastError)
		}
		if len(r.Previews) == 0 {
			fmt.Fprintln(w, "  no previews")
			continue
		}
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  PR\tENVIRONMENT\tSTATE\tHEAD\tAUTHOR\tURL\tREASON")
		sort.Slice(r.Previews, func(i, j int) bool { return r.Previews[i].Number < r.Previews[j].Number })
		for _, p := range r.Previews {
			u := "-"
			if len(p.URLs) > 0 {
				u = strings.Join(p.URLs, " ")
			}
			reason := p.Reason
			if reason == "" && len(p.Errors) > 0 {
				reason = errorLine(p.Errors[0])
			}
			fmt.Fprintf(tw, "  #%d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Number, p.Environment, p.State, short(p.Head), p.Author, u, reason)
		}
		tw.Flush()
		for _, p := range r.Previews {
			for _, e := range p.Errors {
				fmt.Fprintf(w, "  #%d: %s\n", p.Number, errorLine(e))
			}
		}
	}
}

// startRouter serves the preview router on addr; it returns the port it listens on.
func startRouter(ctx context.Context, addr string, r *preview.Router, log *slog.Logger) (int, func(context.Context) error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return 0, nil, fmt.Errorf("preview router: listen: %w", err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("preview router", "err", err)
		}
	}()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(p)
	log.Info("preview router", "addr", ln.Addr().String())
	return port, srv.Shutdown, nil
}

// planPR prints what berth would post on pull request n of a source of the controller's configuration.
func planPR(ctx context.Context, g *globals, ef *engineFlags, configPath, source string, n int) error {
	sc, err := schema.LoadServeConfig(configPath)
	if err != nil {
		return err
	}
	if sc.Instance != "" {
		g.instance = sc.Instance
	}
	if sc.Secrets != nil && sc.Secrets.AgeIdentities != nil && ef.ageIdentities == "" {
		ef.identities = sc.Secrets.AgeIdentities
	}
	var cfg *schema.SourceConfig
	for i := range sc.Sources {
		s := &sc.Sources[i]
		if s.Forge == nil || source != "" && s.Name != source {
			continue
		}
		if cfg != nil {
			return fmt.Errorf("%s: several sources have a forge: name one with --source", configPath)
		}
		cfg = s
	}
	if cfg == nil {
		return fmt.Errorf("%s: no source with a forge (named %q)", configPath, source)
	}
	dataDir := sc.DataDir
	if dataDir == "" {
		dataDir = defaultDataDir()
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	log := g.logger()
	f, err := openFollowed(ctx, g, *cfg, dataDir, log)
	if err != nil {
		return err
	}
	defer f.src.Close()
	fg, err := openForge(cfg.Forge, nil)
	if err != nil {
		return err
	}
	eng, err := ef.engine(g, nil, nil, false)
	if err != nil {
		return err
	}
	defer eng.Close()
	ev, err := schema.NewEvaluator(g.eval)
	if err != nil {
		return err
	}
	key, err := previewKey(dataDir)
	if err != nil {
		return err
	}
	port := 0
	if _, p, err := net.SplitHostPort(sc.Previews.Listen); err == nil {
		port, _ = strconv.Atoi(p)
	}
	var router *preview.Router
	if sc.Previews.Listen != "" {
		router = preview.NewRouter() // for the URLs only: nothing listens
	}
	c, err := preview.New(preview.Options{Name: cfg.Name, Instance: g.instance, Source: f.src, Path: cfg.Path, Forge: fg,
		Engine: eng, Logger: log, Router: router, RouterPort: port, Scheme: sc.Previews.URLScheme,
		Domain: sc.Previews.Domain, Ports: preview.PortRange{From: sc.Previews.PortsFrom, To: sc.Previews.PortsTo},
		HostKey: key, LoadContext: func(ctx context.Context, dir string) (*schema.Config, error) {
			return ev.Load(ctx, dir, "source "+cfg.Name)
		}})
	if err != nil {
		return err
	}
	text, err := c.DryRun(ctx, n)
	if err != nil {
		return err
	}
	_, err = io.WriteString(g.stdout, redact.String(text))
	return err
}
