package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/policies"
	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/repos"
	"github.com/berth-dev/berth/schema"
	"github.com/berth-dev/berth/schema/secrets"
)

// engineFlags are the safety settings shared by plan, apply, destroy and serve.
type engineFlags struct {
	maxReplicas    int
	maxDeleteShare float64
	allowPruneAll  bool
	concurrency    int
	// ageIdentities is --age-identities; identities, when set, overrides it (serve's configuration).
	ageIdentities string
	identities    *schema.SecretRef
}

func (f *engineFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&f.maxReplicas, "max-replicas", policies.DefaultMaxReplicas, "policy: the most replicas a workload may ask for")
	fl.Float64Var(&f.maxDeleteShare, "max-delete-share", reconciler.DefaultMaxDeleteShare, "refuse a plan deleting more than this share of an environment's workloads")
	fl.BoolVar(&f.allowPruneAll, "allow-prune-all", false, "allow a plan that deletes every workload of an environment, or more than --max-delete-share")
	fl.IntVar(&f.concurrency, "concurrency", reconciler.DefaultConcurrency, "workloads applied at once per environment")
	fl.StringVar(&f.ageIdentities, "age-identities", "", "file of age identities (AGE-SECRET-KEY-1...) that decrypt the repository's SOPS secrets; default $SOPS_AGE_KEY_FILE, else the identities in $SOPS_AGE_KEY")
}

// secrets is the secret resolver of the engine: the age identities of --age-identities (or serve's configuration,
// or sops's own SOPS_AGE_KEY_FILE and SOPS_AGE_KEY), none when nothing names any: a SOPS secret then fails its
// workload's step saying how to give them.
func (f *engineFlags) secrets() (*reconciler.Secrets, error) {
	ref := f.identities
	switch {
	case ref != nil:
	case f.ageIdentities != "":
		ref = &schema.SecretRef{File: f.ageIdentities, Field: "--age-identities"}
	case os.Getenv("SOPS_AGE_KEY_FILE") != "":
		ref = &schema.SecretRef{File: os.Getenv("SOPS_AGE_KEY_FILE"), Field: "$SOPS_AGE_KEY_FILE"}
	case os.Getenv("SOPS_AGE_KEY") != "":
		ref = &schema.SecretRef{Env: "SOPS_AGE_KEY", Field: "$SOPS_AGE_KEY"}
	default:
		return &reconciler.Secrets{}, nil
	}
	d, err := secrets.LoadIdentities(ref, secrets.Options{})
	if err != nil {
		return nil, err
	}
	return &reconciler.Secrets{Decrypter: d, Key: d.FingerprintKey()}, nil
}

// engine builds the reconcile engine; background is true for the long-running controller only.
func (f *engineFlags) engine(g *globals, store *reconciler.Store, metrics *reconciler.Metrics, background bool) (*reconciler.Engine, error) {
	sec, err := f.secrets()
	if err != nil {
		return nil, err
	}
	return reconciler.NewEngine(reconciler.Options{
		Secrets:        sec,
		Registry:       registryResolver,
		Background:     background,
		Instance:       g.instance,
		Logger:         g.logger(),
		MaxDeleteShare: f.maxDeleteShare,
		AllowPruneAll:  f.allowPruneAll,
		Concurrency:    f.concurrency,
		Policy:         policies.Options{MaxReplicas: f.maxReplicas},
		Store:          store,
		Metrics:        metrics,
	})
}

// snapshotConfig takes an immutable snapshot of the directory (refusing links that escape it) and renders it.
func snapshotConfig(ctx context.Context, g *globals, dir string) (*schema.Config, *repos.Snapshot, func(), error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, nil, nil, err
	} else if !fi.IsDir() {
		return nil, nil, nil, fmt.Errorf("%s: not a directory", dir)
	}
	src, err := repos.Open(ctx, dir, repos.Options{Logger: g.logger()})
	if err != nil {
		return nil, nil, nil, err
	}
	snap, err := src.Fetch(ctx)
	if err != nil {
		src.Close()
		return nil, nil, nil, err
	}
	cfg, err := loadConfig(ctx, g, snap.Dir, dir)
	if err != nil {
		src.Close()
		return nil, nil, nil, err
	}
	return cfg, snap, func() { src.Close() }, nil
}

// workspace is what plan and apply work on: a snapshot of the repository, its rendered config, the environments
// asked for, and an engine.
type workspace struct {
	cfg   *schema.Config
	snap  *repos.Snapshot
	envs  []string
	eng   *reconciler.Engine
	close func()
}

func openWorkspace(ctx context.Context, g *globals, ef *engineFlags, dir, env string) (*workspace, error) {
	cfg, snap, done, err := snapshotConfig(ctx, g, dir)
	if err != nil {
		return nil, err
	}
	envs, err := envNames(cfg, env)
	if err != nil {
		done()
		return nil, err
	}
	eng, err := ef.engine(g, nil, nil, false)
	if err != nil {
		done()
		return nil, err
	}
	return &workspace{cfg: cfg, snap: snap, envs: envs, eng: eng, close: func() { eng.Close(); done() }}, nil
}

func newPlanCmd(g *globals) *cobra.Command {
	var env, output string
	var detailed bool
	var ef engineFlags
	var pr int
	var configPath, source string
	cmd := &cobra.Command{
		Use:   "plan [PATH] | plan --pr N --config FILE [--source NAME]",
		Short: "Show what apply would change: steps per environment with field-level diffs",
		Long: `Show what apply would change. The plan compares the repository at PATH with what runs, and lists the
steps apply carries out, in order, each with its reason and field-level diff.

With --detailed-exitcode the exit status is 0 when nothing would change, 2 when something would, 1 on error.

With --pr N and the controller's --config, it prints what berth would post on pull request N of the source's forge
now (the preview's comment and the plan of every environment following the branch it targets), changing and posting
nothing.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if pr != 0 || cmd.Flags().Changed("config") {
				if len(args) > 0 || pr <= 0 || configPath == "" {
					return fmt.Errorf("--pr N (N > 0) goes with --config FILE and no PATH")
				}
				return planPR(cmd.Context(), g, &ef, configPath, source, pr)
			}
			if err := checkOutput(output); err != nil {
				return err
			}
			ctx := cmd.Context()
			w, err := openWorkspace(ctx, g, &ef, pathArg(args), env)
			if err != nil {
				return err
			}
			defer w.close()
			cfg, snap, envs, eng := w.cfg, w.snap, w.envs, w.eng
			var plans []*reconciler.Plan
			changes := false
			for _, e := range envs {
				p, err := eng.Plan(ctx, cfg, e, snap.Revision)
				if err != nil {
					return fmt.Errorf("plan %s: %w", e, err)
				}
				plans = append(plans, p)
				changes = changes || !p.Empty()
			}
			if output == "json" {
				if err := writeJSON(g.stdout, plans); err != nil {
					return err
				}
			} else {
				for _, p := range plans {
					if err := p.Write(g.stdout); err != nil {
						return err
					}
				}
			}
			for _, p := range plans {
				if p.Blocked() {
					return &exitError{code: 1, err: fmt.Errorf("environment %s: plan blocked: %s", p.Environment, p.BlockedReason())}
				}
			}
			if detailed && changes {
				return &exitError{code: 2}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "only this environment")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 0 when nothing would change, 2 when something would, 1 on error")
	cmd.Flags().IntVar(&pr, "pr", 0, "print what berth would post on this pull request (with --config)")
	cmd.Flags().StringVar(&configPath, "config", "", "the controller's configuration file (with --pr)")
	cmd.Flags().StringVar(&source, "source", "", "the source of --config whose forge has the pull request; default the only one with a forge")
	ef.register(cmd)
	return cmd
}

func newApplyCmd(g *globals) *cobra.Command {
	var env, output string
	var ef engineFlags
	cmd := &cobra.Command{
		Use:   "apply [PATH]",
		Short: "Plan and carry out the changes for each environment",
		Long: `Plan and carry out the changes for each environment (or only --env). Updates are make-before-break:
each new replica is started and healthy before an old one is stopped. A blocked plan (policy deny, a capability the
target lacks, a refused prune) changes nothing.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			ctx := cmd.Context()
			w, err := openWorkspace(ctx, g, &ef, pathArg(args), env)
			if err != nil {
				return err
			}
			defer w.close()
			cfg, snap, envs, eng := w.cfg, w.snap, w.envs, w.eng
			var results []*reconciler.ApplyResult
			var failed error
			for _, e := range envs {
				p, err := eng.Plan(ctx, cfg, e, snap.Revision)
				if err != nil {
					return fmt.Errorf("plan %s: %w", e, err)
				}
				if output == "text" {
					if err := p.Write(g.stdout); err != nil {
						return err
					}
				}
				if p.Blocked() {
					failed = fmt.Errorf("environment %s: plan blocked: %s", e, p.BlockedReason())
					continue
				}
				res, err := eng.Apply(ctx, cfg, p)
				if res != nil {
					results = append(results, res)
					if output == "text" {
						res.Write(g.stdout)
					}
				}
				if err != nil {
					failed = fmt.Errorf("apply %s: %w", e, err)
				}
			}
			if output == "json" {
				if err := writeJSON(g.stdout, results); err != nil {
					return err
				}
			}
			return failed
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "only this environment")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	ef.register(cmd)
	return cmd
}

func newDestroyCmd(g *globals) *cobra.Command {
	var env string
	var ef engineFlags
	cmd := &cobra.Command{
		Use:   "destroy --env E [PATH]",
		Short: "Delete every workload berth runs for one environment",
		Long: `Delete every workload this berth instance runs for the environment, on every target the repository
at PATH declares. Only objects carrying this instance's ownership labels for that environment are touched.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if env == "" {
				return fmt.Errorf("--env is required")
			}
			ctx := cmd.Context()
			cfg, _, done, err := snapshotConfig(ctx, g, pathArg(args))
			if err != nil {
				return err
			}
			defer done()
			eng, err := ef.engine(g, nil, nil, false)
			if err != nil {
				return err
			}
			defer eng.Close()
			if err := eng.Destroy(ctx, cfg, env); err != nil {
				return fmt.Errorf("destroy %s: %w", env, err)
			}
			fmt.Fprintf(g.stdout, "environment %s destroyed\n", env)
			return nil
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "the environment to destroy (required)")
	ef.register(cmd)
	return cmd
}
