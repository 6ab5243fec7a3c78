package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/reconciler"
)

func newStatusCmd(g *globals) *cobra.Command {
	var server, output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what a running controller reports: source, revisions, environments, workloads, errors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			st, raw, err := fetchStatus(cmd.Context(), server)
			if err != nil {
				return err
			}
			if output == "json" {
				_, err := g.stdout.Write(raw)
				return err
			}
			writeStatus(g.stdout, st)
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "http://"+DefaultListen, "address of berth serve's API")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func fetchStatus(ctx context.Context, server string) (*ServerStatus, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(server, "/")+statusPath, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("no controller answers at %s: %w", server, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%s: %s", server, resp.Status)
	}
	var st ServerStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, nil, fmt.Errorf("%s: status does not parse: %w", server, err)
	}
	return &st, raw, nil
}

func short(rev string) string {
	if i := strings.IndexByte(rev, ':'); i >= 0 {
		rev = rev[i+1:]
	}
	if len(rev) > 12 {
		return rev[:12]
	}
	if rev == "" {
		return "-"
	}
	return rev
}

func writeStatus(w io.Writer, all *ServerStatus) {
	for i := range all.Sources {
		if i > 0 {
			fmt.Fprintln(w)
		}
		writeSource(w, &all.Sources[i])
	}
}

func writeSource(w io.Writer, st *reconciler.Status) {
	where := "branch " + st.Branch
	if st.Path != "" {
		where += ", path " + st.Path
	}
	fmt.Fprintf(w, "source %s: %s (%s)\n", st.Name, st.Source, where)
	checked := "never"
	if !st.CheckedAt.IsZero() {
		checked = st.CheckedAt.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "  revision %s, last checked %s\n", short(st.Revision), checked)
	if v := st.Verified; v != nil {
		fmt.Fprintf(w, "  verified (%s): %s signed by %s\n", v.Mode, v.Object, v.Key)
	}
	if st.LastError != "" {
		fmt.Fprintf(w, "  error %s\n", st.LastError)
	}
	for _, e := range st.Errors {
		fmt.Fprintf(w, "  %s\n", errorLine(e))
	}
	for _, env := range st.Environments {
		fmt.Fprintf(w, "  environment %s: %s (applied %s, attempted %s)\n", env.Name, env.Phase,
			short(env.LastAppliedRevision), short(env.LastAttemptedRevision))
		for _, e := range env.Errors {
			fmt.Fprintf(w, "    error %s\n", errorLine(e))
		}
		for _, f := range env.Findings {
			fmt.Fprintf(w, "    %s\n", f)
		}
		if len(env.Workloads) > 0 {
			fmt.Fprintf(w, "    %-24s %-12s %-14s %s\n", "WORKLOAD", "TARGET", "SPEC", "READY")
			for _, wl := range env.Workloads {
				ready := fmt.Sprintf("%d/%d", wl.ReadyReplicas, wl.DesiredReplicas)
				if !wl.BackoffUntil.IsZero() {
					ready += " (retry after " + wl.BackoffUntil.Format(time.TimeOnly) + ")"
				}
				if len(wl.Drift) > 0 {
					ready += " (drift: " + strings.Join(wl.Drift, ", ") + ")"
				}
				fmt.Fprintf(w, "    %-24s %-12s %-14s %s\n", wl.Name, wl.Target, wl.SpecHash, ready)
				for _, k := range wl.Kept {
					fmt.Fprintf(w, "      kept %s: %s\n", k.Path, k.Reason)
				}
				for _, e := range wl.Endpoints {
					fmt.Fprintf(w, "      port %d: %s\n", e.Port, strings.TrimSpace(e.Address+" "+e.URL))
				}
				for _, n := range wl.Names {
					var ms []string
					for _, m := range n.Members {
						ms = append(ms, fmt.Sprintf("%s %d%%", m.Target, m.Weight))
					}
					if len(ms) == 0 {
						ms = []string{"nothing yet"}
					}
					fmt.Fprintf(w, "      name %s (dns %s): %s\n", n.Name, n.DNS, strings.Join(ms, ", "))
				}
				if m := wl.Migration; m != nil {
					line := fmt.Sprintf("moving from %s to %s: %s, %d%% on %s since %s", strings.Join(m.From, ", "), m.To,
						m.Phase, m.Weight, m.To, m.Time.Format(time.RFC3339))
					if m.Phase == reconciler.MoveAborted {
						line = fmt.Sprintf("move to %s aborted at %s: %s", m.To, m.Time.Format(time.RFC3339), m.Detail)
					} else if m.Detail != "" {
						line += " (" + m.Detail + ")"
					}
					fmt.Fprintf(w, "      %s\n", line)
				}
			}
		}
		if env.Plan != "" {
			fmt.Fprintf(w, "    last plan: %s\n", env.Plan)
		}
	}
}

func errorLine(e reconciler.ErrorInfo) string {
	var b strings.Builder
	if e.File != "" {
		fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Column)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Message)
	return b.String()
}
