package providers

import (
	"encoding/json"
	"sync"

	"github.com/berth-dev/berth/schema"
)

// NewWatch is how an edge follows the replicas behind container port port of a workload by itself: the objects of
// kind (WatchContainers, WatchTasks) on the engine at engine ("" for the environment's default) carrying labels
// (the workload's ownership labels on its target, whatever their spec hash, so a replica an Apply starts is found as
// it starts and one it removes leaves as it goes). HealthPath is the path of an HTTP check h on that same port ("/"
// when it gives none); another check (TCP, command, an HTTP check of another port) leaves it empty.
func NewWatch(kind, engine string, labels map[string]string, h *schema.HealthCheck, port int) *Watch {
	w := &Watch{Kind: kind, Engine: engine, Labels: labels, Port: port}
	if h != nil && h.HTTP != nil && h.HTTP.Port == port {
		w.HealthPath = h.HTTP.Path
		if w.HealthPath == "" {
			w.HealthPath = "/"
		}
	}
	return w
}

// Watches hands out one pointer per distinct Watch, so that an unchanged Endpoint compares equal (==) from one List
// to the next. It keeps every distinct Watch it was given (a few per public port of a workload). The zero value is
// ready to use; callers must not modify what it returns.
type Watches struct {
	mu   sync.Mutex
	seen map[string]*Watch
}

// Intern returns the pointer for a Watch equal to w.
func (ws *Watches) Intern(w *Watch) *Watch {
	b, err := json.Marshal(w) // map keys sorted: equal watches encode alike
	if err != nil {
		return w
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if have, ok := ws.seen[string(b)]; ok {
		return have
	}
	if ws.seen == nil {
		ws.seen = map[string]*Watch{}
	}
	ws.seen[string(b)] = w
	return w
}
