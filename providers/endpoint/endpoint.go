package endpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// MaxWeight is the weight of a member that gets every new lookup or connection; weights are 0..MaxWeight and
// relative to the other members' ones.
const MaxWeight = 100

var (
	// ErrNotOwned is returned when the stable name already has records (or an ownership record) that are not
	// berth's for this owner: berth never touches them, and the plan says so.
	ErrNotOwned = errors.New("the name has records berth does not own")
	// ErrBadMember is returned (wrapped, Permanent) for a member a router cannot serve: no address, a host name
	// where the router needs IP addresses, a weight out of range, two members of one target.
	ErrBadMember = errors.New("member cannot be served")
)

// Owner owns one stable name: the berth instance, the environment and the workload whose public port it serves.
type Owner struct {
	Instance    string `json:"instance"`
	Environment string `json:"environment"`
	Workload    string `json:"workload"`
}

func (o Owner) String() string { return o.Instance + "/" + o.Environment + "/" + o.Workload }

// ownerPrefix starts every ownership text.
const ownerPrefix = "heritage=berth"

// OwnerText is the content of the ownership record (a DNS TXT string, a record set's metadata value):
// "heritage=berth,berth.dev/instance=berth,berth.dev/environment=prod,berth.dev/workload=web". It holds names only.
func OwnerText(o Owner) string {
	return fmt.Sprintf("%s,%s=%s,%s=%s,%s=%s", ownerPrefix, providers.LabelInstance, o.Instance,
		providers.LabelEnvironment, o.Environment, providers.LabelWorkload, o.Workload)
}

// ParseOwnerText reads an ownership text back; false when s is not one berth wrote.
func ParseOwnerText(s string) (Owner, bool) {
	s = strings.Trim(s, `"`)
	parts := strings.Split(s, ",")
	if len(parts) != 4 || parts[0] != ownerPrefix {
		return Owner{}, false
	}
	var o Owner
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return Owner{}, false
		}
		switch k {
		case providers.LabelInstance:
			o.Instance = v
		case providers.LabelEnvironment:
			o.Environment = v
		case providers.LabelWorkload:
			o.Workload = v
		default:
			return Owner{}, false
		}
	}
	return o, o.Instance != "" && o.Environment != "" && o.Workload != ""
}

// OwnerRecordName is the DNS name of the TXT ownership record of name, for zones whose record sets carry no
// tags: "_berth-owner.web.example.com." (a TXT cannot sit beside a CNAME at the name itself).
func OwnerRecordName(name string) string { return "_berth-owner." + Fqdn(name) }

// Fqdn returns name with exactly one trailing dot, in lower case.
func Fqdn(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) + "." }

// Member is one target's copy behind a stable name.
type Member struct {
	// Target is the berth target whose copy it is; it identifies the member in the name's records (a Route 53
	// set identifier, a Cloud DNS weighted item, an edge backend group).
	Target string `json:"target"`
	// Addresses are where the copy answers. For DNS routers: IP addresses, or exactly one host name (a load
	// balancer's); no port (clients keep the public port). For the edge: "host:port" each.
	Addresses []string `json:"addresses,omitempty"`
	// Watch, for the edge only, makes it follow the copy's replicas itself (see providers.Watch), probing each
	// before use. Addresses may then be empty (berth gives none: the runtime's reported address is a proxy in the
	// controller's process); any given are used until the first look.
	Watch *providers.Watch `json:"watch,omitempty"`
	// Weight is the member's share of new lookups (connections for the edge), 0..MaxWeight, relative to the
	// others'. 0 gets nothing while another member has weight; a router without weights (Capabilities.Weighted
	// false) answers every member of weight > 0 alike and leaves weight-0 members out.
	Weight int `json:"weight"`
}

// HostName tells whether the member's address is a host name rather than IP addresses or host:port pairs.
func (m Member) HostName() bool {
	return len(m.Addresses) == 1 && net.ParseIP(m.Addresses[0]) == nil && !strings.Contains(m.Addresses[0], ":")
}

// Record is what a stable name serves now.
type Record struct {
	// Name is the name as the router reads it (a fully qualified DNS name with its dot, or the edge's host:port).
	Name    string        `json:"name"`
	TTL     time.Duration `json:"ttl"`
	Members []Member      `json:"members"`
}

// Member returns the member of target and whether there is one.
func (r *Record) Member(target string) (Member, bool) {
	if r == nil {
		return Member{}, false
	}
	for _, m := range r.Members {
		if m.Target == target {
			return m, true
		}
	}
	return Member{}, false
}

// Capabilities say what a router can do.
type Capabilities struct {
	// Weighted: members get shares by weight. Without it, every member of weight > 0 is answered alike.
	Weighted bool `json:"weighted"`
	// HostNames: a member may be a host name (a load balancer's DNS name).
	HostNames bool `json:"hostNames"`
	// MinTTL is the smallest TTL it accepts (0: any).
	MinTTL time.Duration `json:"minTTL,omitempty"`
	// Connections: the router can tell how many connections each member has open (Drainer), so a drain ends as
	// soon as the old member has none.
	Connections bool `json:"connections,omitempty"`
}

// Router serves stable names in front of workload copies: a DNS zone (Route 53, Cloud DNS, Azure DNS) or berth's
// on-prem edge. Implementations are safe for concurrent use on different names; the reconciler never runs two
// calls for the same name at once. Every call is bounded by ctx; a transient failure (throttling, 5xx) is retried
// inside with backoff and jitter, and what remains is returned (providers.Permanent for what cannot pass).
type Router interface {
	Type() string
	Capabilities() Capabilities
	// Get returns what name serves for owner; (nil, nil) when the name has no records at all. ErrNotOwned when
	// it has records, or an ownership record, that are not owner's.
	Get(ctx context.Context, owner Owner, name string) (*Record, error)
	// Set makes name serve exactly members (and its ownership record), replacing what it served, in one change
	// where the API allows it, and returns once the change is live (Route 53 INSYNC, a Cloud DNS change done,
	// the edge's table applied). ErrNotOwned as Get, and nothing is changed then. Setting what is already served
	// changes nothing.
	Set(ctx context.Context, owner Owner, name string, ttl time.Duration, members []Member) error
	// Delete removes every record of name that owner owns, the ownership record last. Deleting what is gone is
	// not an error; ErrNotOwned as Get.
	Delete(ctx context.Context, owner Owner, name string) error
}

// Drainer is an optional interface (Capabilities.Connections): the connections open to each member of name, by
// target, so that a drain can end once the leaving member has none.
type Drainer interface {
	Connections(ctx context.Context, owner Owner, name string) (map[string]int, error)
}

// Lister is an optional interface: every name owner's instance owns on the router, for the reconciler to find
// names no workload declares any more (a removed endpoint) and delete them.
type Lister interface {
	Names(ctx context.Context, instance string) (map[string]Owner, error)
}

// Options are what every router factory is given.
type Options struct {
	Logger *slog.Logger
	// Instance is the managing berth instance.
	Instance string
}

// Factory builds the router of one `dns:` entry (schema.Config.DNS; a schema.Target in shape: name, type,
// settings).
type Factory func(t schema.Target, opts Options) (Router, error)

var factories = providers.Registry[Factory]{What: "endpoint: Register"}

// Register makes a router type available. Router packages call it from init.
func Register(typ string, f Factory) { factories.Register(typ, f) }

// New builds the router of the `dns:` entry t.
func New(t schema.Target, opts Options) (Router, error) {
	f, ok := factories.Lookup(t.Type)
	if !ok {
		return nil, fmt.Errorf("dns %q: unknown type %q (known: %v)", t.Name, t.Type, Types())
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return f(t, opts)
}

// Types lists the registered router types, sorted.
func Types() []string { return factories.Types() }

// CheckMembers is the validation every router does before a Set: each member has a target, once, and addresses
// (or a watch), and a weight in range; at least one member has weight > 0 unless every member has weight 0.
// The error wraps ErrBadMember and is Permanent.
func CheckMembers(members []Member, hostNames bool) error {
	seen := map[string]bool{}
	for _, m := range members {
		switch {
		case m.Target == "":
			return providers.Permanent(fmt.Errorf("%w: a member has no target", ErrBadMember))
		case seen[m.Target]:
			return providers.Permanent(fmt.Errorf("%w: target %s is a member twice", ErrBadMember, m.Target))
		case len(m.Addresses) == 0 && m.Watch == nil:
			return providers.Permanent(fmt.Errorf("%w: member %s has no address", ErrBadMember, m.Target))
		case m.Weight < 0 || m.Weight > MaxWeight:
			return providers.Permanent(fmt.Errorf("%w: member %s has weight %d (want 0..%d)", ErrBadMember, m.Target, m.Weight, MaxWeight))
		case m.HostName() && !hostNames:
			return providers.Permanent(fmt.Errorf("%w: member %s is the host name %s; this router serves IP addresses only", ErrBadMember, m.Target, m.Addresses[0]))
		}
		seen[m.Target] = true
	}
	return nil
}
