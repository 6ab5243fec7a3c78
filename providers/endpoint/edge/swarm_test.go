package edge

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
)

// swarmAPI is a wire-level stand-in for a swarm manager's Engine API: the calls a tasks watch makes (GET
// /services, /tasks, /nodes/{id}), with filters as the engine applies them, for the Docker SDK's own client.
type swarmAPI struct {
	mu       sync.Mutex
	services []swarm.Service
	tasks    []swarm.Task
	nodes    map[string]swarm.Node
	calls    []string
}

var versioned = regexp.MustCompile(`^/v1\.\d+`)

func (a *swarmAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	path := versioned.ReplaceAllString(r.URL.Path, "")
	a.calls = append(a.calls, r.Method+" "+path)
	w.Header().Set("Api-Version", "1.47")
	f, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	labelsMatch := func(l map[string]string) bool { return f.MatchKVList("label", l) }
	switch {
	case path == "/_ping":
		w.Write([]byte("OK"))
	case path == "/services":
		out := []swarm.Service{}
		for _, s := range a.services {
			if labelsMatch(s.Spec.Labels) {
				out = append(out, s)
			}
		}
		json.NewEncoder(w).Encode(out)
	case path == "/tasks":
		out := []swarm.Task{}
		for _, t := range a.tasks {
			if (!f.Contains("service") || f.ExactMatch("service", t.ServiceID)) &&
				(!f.Contains("desired-state") || f.ExactMatch("desired-state", string(t.DesiredState))) {
				out = append(out, t)
			}
		}
		json.NewEncoder(w).Encode(out)
	case strings.HasPrefix(path, "/nodes/"):
		n, ok := a.nodes[strings.TrimPrefix(path, "/nodes/")]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]string{"message": "no such node"})
			return
		}
		json.NewEncoder(w).Encode(n)
	default:
		http.NotFound(w, r)
	}
}

func task(id, svc, node string, state swarm.TaskState, ports ...swarm.PortConfig) swarm.Task {
	return swarm.Task{ID: id, ServiceID: svc, NodeID: node, DesiredState: swarm.TaskStateRunning,
		Status: swarm.TaskStatus{State: state, PortStatus: swarm.PortStatus{Ports: ports}}}
}

func hostPort(target int, published string) swarm.PortConfig {
	p, _ := strconv.Atoi(published)
	return swarm.PortConfig{Protocol: swarm.PortConfigProtocolTCP, TargetPort: uint32(target), PublishedPort: uint32(p),
		PublishMode: swarm.PortConfigPublishModeHost}
}

// TestWatchTasks: a tasks watch finds the running tasks of the labelled services at their node's address and
// host-mode port, and the edge forwards to them; tasks that stop leave, replacements come in.
func TestWatchTasks(t *testing.T) {
	b1, b2 := echoBackend(t), echoBackend(t)
	_, p1, _ := net.SplitHostPort(b1)
	_, p2, _ := net.SplitHostPort(b2)
	labels := map[string]string{providers.LabelWorkload: "web", providers.LabelEnvironment: "prod"}
	api := &swarmAPI{
		services: []swarm.Service{
			{ID: "svc1", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "web", Labels: labels}}},
			{ID: "svc2", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "other", Labels: map[string]string{providers.LabelWorkload: "db"}}}},
		},
		tasks: []swarm.Task{
			task("t1", "svc1", "n1", swarm.TaskStateRunning, hostPort(8080, p1), hostPort(9090, "7777")),
			task("t2", "svc1", "n2", swarm.TaskStateStarting, hostPort(8080, "7001")),                                 // not running yet
			task("t3", "svc1", "n1", swarm.TaskStateRunning, swarm.PortConfig{TargetPort: 8080, PublishedPort: 7002}), // ingress mode
			task("t4", "svc2", "n1", swarm.TaskStateRunning, hostPort(8080, "7003")),                                  // another service
		},
		nodes: map[string]swarm.Node{
			"n1": {ID: "n1", Status: swarm.NodeStatus{Addr: "0.0.0.0"}},   // a wildcard: the engine's host
			"n2": {ID: "n2", Status: swarm.NodeStatus{Addr: "127.0.0.2"}}, // another node
		},
	}
	emu := httptest.NewServer(api)
	defer emu.Close()
	engine := "tcp://" + strings.TrimPrefix(emu.URL, "http://")
	s := startEdge(t, "", func(o *Options) {
		o.Docker = func(e string) (Docker, error) {
			if e != engine {
				t.Errorf("watch asked for engine %q, want %q", e, engine)
			}
			return client.NewClientWithOpts(client.WithHost(e), client.WithAPIVersionNegotiation())
		}
	})
	r := routerOf(t, s)
	name := freeName(t)
	w := &providers.Watch{Kind: providers.WatchTasks, Engine: engine, Labels: labels, Port: 8080}
	if err := r.Set(tctx(t), testOwner, name, time.Minute, []endpoint.Member{{Target: "swarm", Watch: w, Weight: 100}}); err != nil {
		t.Fatal(err)
	}
	resolved := func() []string {
		st, err := r.Status(tctx(t), name)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range st.Members[0].Resolved {
			if a.Ready {
				out = append(out, a.Address)
			}
		}
		return out
	}
	eventually(t, "the running task ready", func() bool { return slices.Equal(resolved(), []string{"127.0.0.1:" + p1}) })
	if got := lookup(t, name, 5); len(got) != 5 || got[0] != b1 {
		t.Fatalf("through the tasks watch: %v, want %s", got, b1)
	}
	// t1 is replaced by t5 on another address.
	api.mu.Lock()
	api.tasks[0].Status.State, api.tasks[0].DesiredState = swarm.TaskStateShutdown, swarm.TaskStateShutdown
	api.tasks = append(api.tasks, task("t5", "svc1", "n1", swarm.TaskStateRunning, hostPort(8080, p2)))
	api.mu.Unlock()
	eventually(t, "the replacement ready", func() bool { return slices.Equal(resolved(), []string{"127.0.0.1:" + p2}) })
	if got := lookup(t, name, 5); len(got) != 5 || got[0] != b2 {
		t.Fatalf("after the replacement: %v, want %s", got, b2)
	}
	// The starting task on n2 comes up: its node's own address.
	api.mu.Lock()
	api.tasks[1].Status.State = swarm.TaskStateRunning
	api.mu.Unlock()
	eventually(t, "the task on n2", func() bool {
		st, _ := r.Status(tctx(t), name)
		return slices.ContainsFunc(st.Members[0].Resolved, func(a AddressStatus) bool { return a.Address == "127.0.0.2:7001" })
	})
	api.mu.Lock()
	calls := slices.Clone(api.calls)
	api.mu.Unlock()
	if !slices.Contains(calls, "GET /services") || !slices.Contains(calls, "GET /tasks") || !slices.Contains(calls, "GET /nodes/n2") {
		t.Errorf("the watch made the calls %v", slices.Compact(calls))
	}
}
