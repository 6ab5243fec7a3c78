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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/schema"
	"github.com/berth-dev/berth/schema/redact"

	_ "github.com/berth-dev/berth/providers/aws"               // the aws target type
	_ "github.com/berth-dev/berth/providers/azure"             // the azure target type
	_ "github.com/berth-dev/berth/providers/docker"            // the docker target type
	_ "github.com/berth-dev/berth/providers/endpoint/azuredns" // the azuredns router of stable names
	_ "github.com/berth-dev/berth/providers/endpoint/clouddns" // the clouddns router
	_ "github.com/berth-dev/berth/providers/endpoint/edge"     // the edge router (berth edge)
	_ "github.com/berth-dev/berth/providers/endpoint/route53"  // the route53 router
	_ "github.com/berth-dev/berth/providers/gcp"               // the gcp target type
	_ "github.com/berth-dev/berth/providers/kubernetes"        // the kubernetes target type
	_ "github.com/berth-dev/berth/providers/marathon"          // the marathon target type
	_ "github.com/berth-dev/berth/providers/nomad"             // the nomad target type
	_ "github.com/berth-dev/berth/providers/swarm"             // the swarm target type
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

// signalError is the cause of the command context when berth is asked to stop.
type signalError struct{ sig syscall.Signal }

func (e *signalError) Error() string { return signalName(e.sig) + " received" }

// code is the exit status of a command stopped by the signal: 128+n, as shells report it (130 for SIGINT, 143
// for SIGTERM).
func (e *signalError) code() int { return 128 + int(e.sig) }

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// stopGrace is how long a one-shot command has, after SIGINT or SIGTERM, to return on its own before berth exits
// anyway; a second signal exits at once. serve sets its own (serveShutdownGrace and a second) in signalGrace.
const stopGrace = 900 * time.Millisecond

// signalGrace is the current command's stopGrace.
var signalGrace atomic.Int64

func init() { signalGrace.Store(int64(stopGrace)) }

func main() {
	if len(os.Args) > 1 && os.Args[1] == schema.EvalCommand {
		os.Exit(evaluate(os.Args[2:], os.Stdout, os.Stderr))
	}
	log.SetOutput(redact.Writer(os.Stderr)) // what libraries print with the standard log package is masked too
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		se := &signalError{sig: s.(syscall.Signal)}
		cancel(se)
		grace := time.Duration(signalGrace.Load())
		select {
		case s = <-sigs:
			se = &signalError{sig: s.(syscall.Signal)}
		case <-time.After(grace):
		}
		fmt.Fprintf(os.Stderr, "berth: %s; not stopped after %v, exiting now\n", se, grace)
		os.Exit(se.code())
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// evaluate is the hidden command berth runs as its own child to evaluate a repository under limits (see
// schema.Evaluator). Its stdout is an answer for the parent only, never shown.
func evaluate(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: berth", schema.EvalCommand, "DIR")
		return 2
	}
	return schema.RunEvaluation(args[0], stdout, stderr)
}

// run executes one command line and returns the process exit status. Everything it writes, results, logs and
// errors alike, goes through the redaction choke point (schema/redact): a value registered anywhere in the process
// (a source's credentials, a webhook secret) is masked in every encoding.
//
// A command stopped by SIGINT or SIGTERM (the cause of ctx) exits with 128+n after saying so.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == schema.EvalCommand {
		return evaluate(args[1:], stdout, stderr)
	}
	stdout, stderr = redact.Writer(stdout), redact.Writer(stderr)
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if se := (*signalError)(nil); errors.As(context.Cause(ctx), &se) && err != nil {
		fmt.Fprintln(stderr, "berth:", redact.Error(err))
		if !errors.Is(err, se) {
			fmt.Fprintln(stderr, "berth: stopped:", se)
		}
		return se.code()
	}
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
	// eval bounds the repository's evaluation: --eval-timeout and --eval-memory (serve: also its configuration).
	eval schema.EvalLimits
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
		newServeCmd(g), newStatusCmd(g), newPreviewsCmd(g),
		newEdgeCmd(g),
	)
	for _, c := range root.Commands() {
		switch c.Name() {
		case "validate", "render", "plan", "apply", "destroy", "serve":
			registerEvalFlags(c, g)
		}
	}
	return root
}
