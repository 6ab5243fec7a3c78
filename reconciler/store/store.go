package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/schema/redact"
)

// DefaultKeep is how many records of each kind are kept per environment.
const DefaultKeep = 100

// Record kinds (top-level buckets).
const (
	kindRevisions = "revisions"
	kindPlans     = "plans"
	kindApplies   = "applies"
	kindEvents    = "events"
	kindMoves     = "migrations"
)

// Options configure OpenWith.
type Options struct {
	// Keep bounds each kind per environment; DefaultKeep when 0.
	Keep int
	// Timeout bounds the wait for the file lock; 1 s when 0.
	Timeout time.Duration
}

// Store is an open history file. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	keep int
}

// Revision is one snapshot the controller fetched.
type Revision struct {
	Revision string    `json:"revision"`
	Branch   string    `json:"branch,omitempty"`
	Message  string    `json:"message,omitempty"`
	Time     time.Time `json:"time"`
	Seen     time.Time `json:"seen"`
}

// Plan is one plan made for an environment. Plan holds the plan's JSON as the reconciler serialised it.
type Plan struct {
	Time        time.Time       `json:"time"`
	Environment string          `json:"environment"`
	Revision    string          `json:"revision"`
	Summary     string          `json:"summary"`
	Blocked     string          `json:"blocked,omitempty"`
	Plan        json.RawMessage `json:"plan"`
}

// Apply is one apply of an environment, step by step.
type Apply struct {
	Time        time.Time     `json:"time"`
	Environment string        `json:"environment"`
	Revision    string        `json:"revision"`
	Duration    time.Duration `json:"duration"`
	Steps       []Step        `json:"steps"`
}

// Step is the outcome of one step of an apply.
type Step struct {
	Action   string        `json:"action"`
	Workload string        `json:"workload"`
	Target   string        `json:"target"`
	OK       bool          `json:"ok"`
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration"`
}

// Event is something worth telling an operator: a revision that failed to load, a blocked plan, a failed step.
type Event struct {
	Time        time.Time `json:"time"`
	Environment string    `json:"environment,omitempty"`
	Workload    string    `json:"workload,omitempty"`
	Revision    string    `json:"revision,omitempty"`
	Kind        string    `json:"kind"`
	Message     string    `json:"message"`
}

// Migration is one transition of a workload's move from target to target (see reconciler's migrations): the
// phase it entered, the new copy's share of the traffic then, and why (an abort's reason). The newest record of a
// workload is where its move stands; the runtime and the routers hold the rest (copies, members, weights).
type Migration struct {
	Time        time.Time `json:"time"`
	Environment string    `json:"environment"`
	Workload    string    `json:"workload"`
	// From are the targets the move leaves; To the one it goes to.
	From     []string `json:"from"`
	To       string   `json:"to"`
	SpecHash string   `json:"specHash"`
	Phase    string   `json:"phase"`
	// Weight is the new copy's weight in percent after the transition.
	Weight int    `json:"weight"`
	Detail string `json:"detail,omitempty"`
}

// Open opens (creating when needed) the store at path with default options.
func Open(path string) (*Store, error) { return OpenWith(path, Options{}) }

// OpenWith opens the store at path.
func OpenWith(path string, opts Options) (*Store, error) {
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, k := range []string{kindRevisions, kindPlans, kindApplies, kindEvents, kindMoves} {
			if _, err := tx.CreateBucketIfNotExists([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &Store{db: db, keep: opts.Keep}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// ErrClosed is returned by a nil store's methods.
var ErrClosed = errors.New("store: not open")

func (s *Store) append(kind, env string, v any) error {
	if s == nil {
		return ErrClosed
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store %s: %w", kind, err)
	}
	// Every record is masked as written, in one place: plans, apply errors and events quote sources, servers and
	// providers, and the file outlives the process.
	b = []byte(redact.String(string(b)))
	err = s.db.Update(func(tx *bolt.Tx) error {
		sub, err := tx.Bucket([]byte(kind)).CreateBucketIfNotExists([]byte("env:" + env))
		if err != nil {
			return err
		}
		seq, err := sub.NextSequence()
		if err != nil {
			return err
		}
		if err := sub.Put(u64(seq), b); err != nil {
			return err
		}
		// Sequences are contiguous: drop the oldest while more than keep remain.
		c := sub.Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k)+uint64(s.keep) <= seq; k, _ = c.Next() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store %s: %w", kind, err)
	}
	return nil
}

// list decodes up to limit records of kind for env, newest first (limit <= 0: all kept).
func list[T any](s *Store, kind, env string, limit int) ([]T, error) {
	if s == nil {
		return nil, ErrClosed
	}
	var out []T
	err := s.db.View(func(tx *bolt.Tx) error {
		sub := tx.Bucket([]byte(kind)).Bucket([]byte("env:" + env))
		if sub == nil {
			return nil
		}
		c := sub.Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			var t T
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("record %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", kind, err)
	}
	return out, nil
}

func u64(n uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, n)
	return b
}

// AppendRevision records a fetched revision.
func (s *Store) AppendRevision(r Revision) error { return s.append(kindRevisions, "", r) }

// Revisions lists the revisions seen, newest first.
func (s *Store) Revisions(limit int) ([]Revision, error) {
	return list[Revision](s, kindRevisions, "", limit)
}

// AppendPlan records a plan.
func (s *Store) AppendPlan(p Plan) error { return s.append(kindPlans, p.Environment, p) }

// Plans lists the plans of env, newest first.
func (s *Store) Plans(env string, limit int) ([]Plan, error) {
	return list[Plan](s, kindPlans, env, limit)
}

// AppendApply records an apply.
func (s *Store) AppendApply(a Apply) error { return s.append(kindApplies, a.Environment, a) }

// Applies lists the applies of env, newest first.
func (s *Store) Applies(env string, limit int) ([]Apply, error) {
	return list[Apply](s, kindApplies, env, limit)
}

// AppendEvent records an event (Environment "" for source-wide events).
func (s *Store) AppendEvent(e Event) error { return s.append(kindEvents, e.Environment, e) }

// Events lists the events of env ("" for source-wide ones), newest first.
func (s *Store) Events(env string, limit int) ([]Event, error) {
	return list[Event](s, kindEvents, env, limit)
}

// AppendMigration records a transition of a move.
func (s *Store) AppendMigration(m Migration) error { return s.append(kindMoves, m.Environment, m) }

// Migrations lists the move transitions of env, newest first.
func (s *Store) Migrations(env string, limit int) ([]Migration, error) {
	return list[Migration](s, kindMoves, env, limit)
}
