package main

import (
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/providers/endpoint/edge"
)

// defaultEdgeAdmin is where `berth edge` serves its admin API unless told: a unix socket in $XDG_RUNTIME_DIR/berth,
// /run/berth for root without one, else beside serve's data directory. It needs no root and no TCP port.
func defaultEdgeAdmin() string {
	dir := filepath.Join(defaultDataDir(), "run")
	switch {
	case os.Getenv("XDG_RUNTIME_DIR") != "":
		dir = filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "berth")
	case os.Geteuid() == 0:
		dir = "/run/berth"
	}
	return "unix://" + filepath.Join(dir, "edge.sock")
}

func newEdgeCmd(g *globals) *cobra.Command {
	opts := edge.Options{}
	cmd := &cobra.Command{
		Use:   "edge",
		Short: "Serve the on-prem stable endpoints: a TCP edge that keeps forwarding while no controller runs",
		Long: `Run berth's on-prem edge. It listens on every stable name (host:port) the controller set through the
admin API, and forwards each connection to the members of that name by weight, to addresses that pass their
probes; members with a watch follow their Docker containers or swarm tasks by label on their own. The routing table
is kept in --state, written atomically on every change and read at start, so a restarted edge serves again before
any controller comes back, and a killed controller changes nothing that is served.

Point a dns entry of type "edge" at --admin, dns: edge: {type: "edge", admin: "unix:///run/berth/edge.sock"},
and give endpoints the host:port to listen at: endpoint: {name: "0.0.0.0:80", dns: "edge"}. The admin API has no
authentication: it listens on a unix socket (mode 0600) or a loopback TCP address only.

On SIGINT or SIGTERM the listeners close, open connections get --shutdown-grace to finish, and the table stays.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("log-level") {
				g.logLevel = "info" // a daemon: its logs are its output
			}
			opts.Logger = g.logger().With("component", "edge")
			signalGrace.Store(int64(max(opts.ShutdownGrace, 0) + 3*time.Second))
			return edge.Serve(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Admin, "admin", defaultEdgeAdmin(), `admin API address: unix:///path.sock or a loopback host:port ("127.0.0.1:7071")`)
	fl.StringVar(&opts.State, "state", filepath.Join(defaultDataDir(), "edge.json"), "file the routing table is kept in")
	fl.DurationVar(&opts.ProbeInterval, "probe-interval", edge.DefaultProbeInterval, "how often every member address is probed (±10% jitter)")
	fl.DurationVar(&opts.WatchInterval, "watch-interval", edge.DefaultWatchInterval, "how often watches look for their containers or tasks (±10% jitter)")
	fl.DurationVar(&opts.DrainGrace, "drain-grace", edge.DefaultDrainGrace, "how long the connections of a deleted route may run before they are closed")
	fl.DurationVar(&opts.ShutdownGrace, "shutdown-grace", edge.DefaultShutdownGrace, "how long open connections may run after SIGINT or SIGTERM")
	return cmd
}
