package swarm_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/providers/docker/dockertest"
)

// EnvRequireSwarm makes the package fail, instead of initialising a swarm of its own, when the engine is not in
// swarm mode (hack/test.sh sets it after its own `docker swarm init`).
const EnvRequireSwarm = "BERTH_REQUIRE_SWARM"

// TestMain puts the engine in swarm mode for the package when it is not in it (and BERTH_REQUIRE_SWARM is unset),
// and leaves that swarm at the end: the engine is left as found. A swarm found active is never left.
func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return m.Run() // the integration tests skip (or fail under BERTH_REQUIRE_DOCKER) through dockertest.Client
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	info, err := cli.Info(ctx)
	if err != nil {
		return m.Run()
	}
	switch state := info.Swarm.LocalNodeState; state {
	case swarm.LocalNodeStateActive:
		return m.Run()
	case swarm.LocalNodeStateInactive:
	default:
		fmt.Fprintf(os.Stderr, "swarm tests: the engine's swarm state is %q (want active or inactive)\n", state)
		return 1
	}
	if os.Getenv(EnvRequireSwarm) != "" {
		fmt.Fprintf(os.Stderr, "swarm tests: %s is set but the engine is not in swarm mode\n", EnvRequireSwarm)
		return 1
	}
	nodeID, err := cli.SwarmInit(ctx, swarm.InitRequest{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"})
	if err != nil {
		fmt.Fprintf(os.Stderr, "swarm tests: swarm init: %v\n", err)
		return 1
	}
	code := m.Run()
	lctx, lcancel := context.WithTimeout(context.Background(), time.Minute)
	defer lcancel()
	if info, err := cli.Info(lctx); err == nil && info.Swarm.NodeID != nodeID {
		return code // not the swarm made here any more (left and made again by someone else): not ours to leave
	}
	if err := cli.SwarmLeave(lctx, true); err != nil {
		fmt.Fprintf(os.Stderr, "swarm tests: leaving the swarm made for the tests: %v\n", err)
		return 1
	}
	return code
}

// swarmClient is the local engine's client (the test skips without an engine), in swarm mode as TestMain left it.
func swarmClient(t *testing.T) *client.Client {
	t.Helper()
	cli := dockertest.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatalf("docker info: %v", err)
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateActive || !info.Swarm.ControlAvailable {
		t.Fatalf("the engine is not a swarm manager (state %q)", info.Swarm.LocalNodeState)
	}
	return cli
}
