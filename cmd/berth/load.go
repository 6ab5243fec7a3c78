package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/policies"
	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/schema"
)

// pathArg is the repository directory named on the command line, "." when none.
func pathArg(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return "."
}

// loadConfig renders the repository at dir in a child process bounded by --eval-timeout and --eval-memory, and
// stopped at once when ctx ends; it calls the repository name in errors. Schema errors come back one per line,
// each with file:line:column relative to the repository.
func loadConfig(ctx context.Context, g *globals, dir, name string) (*schema.Config, error) {
	ev, err := schema.NewEvaluator(g.eval)
	if err != nil {
		return nil, err
	}
	cfg, err := ev.Load(ctx, dir, name)
	if err != nil {
		var es schema.Errors
		var ee *schema.EvalError
		switch {
		case errors.As(err, &es):
			return nil, fmt.Errorf("%s: %d error(s):\n%w", name, len(es), es)
		case errors.As(err, &ee):
			return nil, err // it names the repository
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return cfg, nil
}

// sizeValue is a flag holding a number of bytes, written "512Mi", "2Gi" or in bytes.
type sizeValue struct{ p *int64 }

func (v sizeValue) String() string {
	if v.p == nil || *v.p == 0 {
		return ""
	}
	return schema.FormatSize(*v.p)
}

func (v sizeValue) Set(s string) error {
	n, err := schema.ParseSize(s)
	if err != nil {
		return err
	}
	if n <= 0 {
		return fmt.Errorf("want a positive size such as \"512Mi\"")
	}
	*v.p = n
	return nil
}

func (sizeValue) Type() string { return "size" }

// registerEvalFlags adds --eval-timeout and --eval-memory, the bounds of the repository's evaluation.
func registerEvalFlags(cmd *cobra.Command, g *globals) {
	fl := cmd.Flags()
	g.eval = schema.EvalLimits{Timeout: schema.DefaultEvalTimeout, Memory: schema.DefaultEvalMemory}
	fl.DurationVar(&g.eval.Timeout, "eval-timeout", schema.DefaultEvalTimeout, "time limit of the repository's evaluation")
	fl.Var(sizeValue{&g.eval.Memory}, "eval-memory", "memory budget of the repository's evaluation (e.g. 512Mi, 2Gi)")
	fl.Lookup("eval-memory").DefValue = schema.FormatSize(schema.DefaultEvalMemory)
}

// envNames returns the environments a command works on: the one asked for, or all of them sorted.
func envNames(cfg *schema.Config, env string) ([]string, error) {
	if env != "" {
		if _, ok := cfg.Environments[env]; !ok {
			var known []string
			for n := range cfg.Environments {
				known = append(known, n)
			}
			sort.Strings(known)
			return nil, fmt.Errorf("no environment %q (declared: %s)", env, strings.Join(known, ", "))
		}
		return []string{env}, nil
	}
	var ns []string
	for n := range cfg.Environments {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return fmt.Errorf("-o %q: want text or json", o)
	}
	return nil
}

// validation is what `berth validate -o json` prints.
type validation struct {
	OK           bool                        `json:"ok"`
	Environments int                         `json:"environments"`
	Targets      int                         `json:"targets"`
	Findings     []policies.Finding          `json:"findings"`
	Problems     []reconciler.OfflineProblem `json:"problems"`
}

func newValidateCmd(g *globals) *cobra.Command {
	var maxReplicas int
	var output string
	cmd := &cobra.Command{
		Use:   "validate [PATH]",
		Short: "Check a repository: CUE syntax, the schema, the policies, and what each target's type can honour",
		Long: `validate checks a repository from its files alone: CUE syntax and the schema, the policies of every
environment, and every workload against what its target's type can honour (the checks a plan makes
before it reaches anything). No provider is built, nothing is connected to and no credential is read;
berth plan checks again against the runtimes themselves, which may know more.

Problems are printed one per line, "file:line:col: workload W on target T: field F: message"; any
problem or policy denial makes validate exit non-zero.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			cfg, _, done, err := snapshotConfig(cmd.Context(), g, pathArg(args))
			if err != nil {
				return err
			}
			defer done()
			envs, _ := envNames(cfg, "")
			res := validation{Environments: len(cfg.Environments), Targets: len(cfg.Targets),
				Findings: []policies.Finding{}, Problems: reconciler.CheckOffline(cfg)}
			denied := 0
			for _, env := range envs {
				for _, f := range policies.Evaluate(cfg, env, policies.Options{MaxReplicas: maxReplicas}) {
					res.Findings = append(res.Findings, f)
					if f.Severity == policies.Deny {
						denied++
					}
				}
			}
			if res.Problems == nil {
				res.Problems = []reconciler.OfflineProblem{}
			}
			res.OK = denied == 0 && len(res.Problems) == 0
			if output == "json" {
				if err := writeJSON(g.stdout, res); err != nil {
					return err
				}
			} else {
				for _, f := range res.Findings {
					fmt.Fprintln(g.stderr, f)
				}
				for _, p := range res.Problems {
					fmt.Fprintln(g.stderr, p)
				}
			}
			var why []string
			if denied > 0 {
				why = append(why, fmt.Sprintf("%d policy violation(s)", denied))
			}
			if n := len(res.Problems); n > 0 {
				why = append(why, fmt.Sprintf("%d problem(s) the targets cannot honour", n))
			}
			if len(why) > 0 {
				return errors.New(strings.Join(why, ", "))
			}
			if output == "text" {
				fmt.Fprintf(g.stdout, "ok: %d environment(s), %d target(s)\n", len(cfg.Environments), len(cfg.Targets))
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&maxReplicas, "max-replicas", policies.DefaultMaxReplicas, "policy: the most replicas a workload may ask for")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func newRenderCmd(g *globals) *cobra.Command {
	var env, output string
	cmd := &cobra.Command{
		Use:   "render [PATH]",
		Short: "Print the workloads a repository renders to, per environment",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			cfg, _, done, err := snapshotConfig(cmd.Context(), g, pathArg(args))
			if err != nil {
				return err
			}
			defer done()
			envs, err := envNames(cfg, env)
			if err != nil {
				return err
			}
			if output == "json" {
				if env != "" {
					return writeJSON(g.stdout, cfg.Environments[env])
				}
				return writeJSON(g.stdout, cfg)
			}
			for _, n := range envs {
				e := cfg.Environments[n]
				fmt.Fprintf(g.stdout, "environment %s (branch %s)\n", e.Name, e.Branch)
				for _, w := range e.Workloads {
					fmt.Fprintf(g.stdout, "  %s: %s on %s, %d replica(s)%s\n", w.Name, w.Image, w.Provider, w.Replicas, portSummary(w))
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "only this environment")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func portSummary(w schema.Workload) string {
	var ps []string
	for _, p := range w.Ports {
		s := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if p.Public {
			s = fmt.Sprintf("%d→%s public", p.HostPort, s)
		}
		ps = append(ps, s)
	}
	if len(ps) == 0 {
		return ""
	}
	return ", ports " + strings.Join(ps, ", ")
}

func newSchemaCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the CUE schema repositories are checked against",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := g.stdout.Write(schema.Source())
			return err
		},
	}
}
