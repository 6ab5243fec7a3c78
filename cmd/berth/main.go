// Command berth is the GitOps engine's command line: validate, render, plan and apply a repository of CUE workloads,
// or serve as a controller that keeps a Git branch applied.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/schema/redact"

	_ "github.com/berth-dev/berth/providers/aws"        // the aws target type
	_ "github.com/berth-dev/berth/providers/azure"      // the azure target type
	_ "github.com/berth-dev/berth/providers/docker"     // the docker target type
	_ "github.com/berth-dev/berth/providers/gcp"        // the gcp target type
	_ "github.com/berth-dev/berth/providers/kubernetes" // the kubernetes target type
	_ "github.com/berth-dev/berth/providers/marathon"   // the marathon target type
	_ "github.com/berth-dev/berth/providers/nomad"      // the nomad target type
	_ "github.com/berth-dev/berth/providers/swarm"      // the swarm target type
)

// exitError carries a specific exit status (plan --detailed-exitcode uses 2 for "changes").
type exitError struct {
	code int
	err  error // nil: nothing to print
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func main() {
	log.SetOutput(redact.Writer(os.Stderr)) // what libraries print with the standard log package is masked too
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit status. Everything it writes, results, logs and
// errors alike, goes through the redaction choke point (schema/redact): a value registered anywhere in the process
// (a source's credentials, a webhook secret) is masked in every encoding.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	stdout, stderr = redact.Writer(stdout), redact.Writer(stderr)
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "berth:", redact.Error(ee.err))
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "berth:", redact.Error(err))
	return 1
}

// globals are the flags every command shares.
type globals struct {
	instance  string
	logLevel  string
	logFormat string
	stdout    io.Writer
	stderr    io.Writer
}

func (g *globals) logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(g.stderr, opts)
	if g.logFormat == "json" {
		h = slog.NewJSONHandler(g.stderr, opts)
	}
	// Messages and attributes are masked before they are encoded, so no quoting or escaping hides a secret.
	return slog.New(redact.Handler(h))
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "berth",
		Short: "Run container workloads from a Git repository of CUE files, on any runtime",
		Long: `berth renders a repository of CUE workload definitions, checks it against policies, plans the
changes against what runs, and applies them through provider adapters (docker today).

  berth validate ./repo          check the files
  berth plan ./repo              show what would change
  berth apply ./repo             make it so
  berth serve --repo URL         keep a branch applied, continuously`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			// One-shot commands print their result on stdout; their logs default to warnings only.
			if cmd.Name() != "serve" && !cmd.Flags().Changed("log-level") {
				g.logLevel = "warn"
			}
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.instance, "instance", "berth", "name of this berth instance; every object it creates carries it")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.AddCommand(
		newValidateCmd(g), newRenderCmd(g), newSchemaCmd(g),
		newPlanCmd(g), newApplyCmd(g), newDestroyCmd(g),
		newServeCmd(g), newStatusCmd(g),
	)
	return root
}
