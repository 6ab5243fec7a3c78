package reconciler

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/policies"
	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/schema"
)

// Step actions.
const (
	ActionCreate  = "create"
	ActionUpdate  = "update"
	ActionDelete  = "delete"
	ActionMigrate = "migrate"
	// ActionRelease deletes a stable name no public port declares any more (Step.Name on the dns router
	// Step.Target), with every record berth wrote for it.
	ActionRelease = "release"
)

// Plan is what an apply of one environment at one revision carries out, step by step. Plans are values: they
// print, serialise to JSON and apply exactly as shown.
type Plan struct {
	Environment string             `json:"environment"`
	Revision    string             `json:"revision"`
	Steps       []Step             `json:"steps"`
	Findings    []policies.Finding `json:"findings,omitempty"`
	Problems    []Problem          `json:"problems,omitempty"`
	// Refused says why the plan was refused by the prune safety; "" when it was not.
	Refused string `json:"refused,omitempty"`
	// Kept lists values in managed fields that the runtime keeps and the apply leaves (see providers.Kept).
	Kept []KeptValue `json:"kept,omitempty"`
	// Images lists the desired workloads whose image the plan pinned to a digest (their registry is declared),
	// by workload: what every provider is given, hashed and read back.
	Images []PinnedImage `json:"images,omitempty"`

	// observed is what the providers reported while planning, by workload (for status); not part of the value.
	observed map[string][]providers.Observed
	// hashes are the desired workloads' hashes (DesiredHash of the pinned workload, with its secrets).
	hashes map[string]string
	// routes are what the desired workloads' stable names served while planning, by workload.
	routes map[string][]route
}

// StableName is what one stable name of a workload serves.
type StableName struct {
	Name    string            `json:"name"`
	DNS     string            `json:"dns"`
	Members []endpoint.Member `json:"members,omitempty"`
}

// Names are what workload's stable names served while the plan was made, in port order.
func (p *Plan) Names(workload string) []StableName {
	var out []StableName
	for _, rt := range p.routes[workload] {
		n := StableName{Name: rt.Endpoint.Name, DNS: rt.Endpoint.DNS}
		if rt.Record != nil {
			n.Members = rt.Record.Members
		}
		out = append(out, n)
	}
	return out
}

// Step is one operation on one workload.
type Step struct {
	Action   string `json:"action"`
	Workload string `json:"workload"`
	Target   string `json:"target"`
	// FromTarget is the target a migration leaves (the first of Leaving).
	FromTarget string `json:"fromTarget,omitempty"`
	// Leaving are every target a migration leaves: the copies it deletes once the stable names no longer send
	// clients to them.
	Leaving []string `json:"leaving,omitempty"`
	// Phases are what a migration still has to do, in order, and Expected how long they take at least beyond the
	// time the runtimes and APIs take (the watches of the shift steps, the TTL and the drain).
	Phases   []MovePhase   `json:"phases,omitempty"`
	Expected time.Duration `json:"expected,omitempty"`
	// Name is the stable name a release deletes.
	Name     string `json:"name,omitempty"`
	Reason   string `json:"reason,omitempty"`
	SpecHash string `json:"specHash,omitempty"`
	// Image is the pinned image the step applies (host/name:tag@sha256:...), when the plan pinned it; Apply
	// refuses the plan as stale when the tag names another digest by then.
	Image   string   `json:"image,omitempty"`
	Changes []Change `json:"changes,omitempty"`
	// Error, when set, is why the step cannot be carried out (a secret that cannot be resolved): the apply fails
	// it without touching the workload.
	Error string `json:"error,omitempty"`
}

// Change is one field that differs between what runs and what is desired.
type Change struct {
	Path string `json:"path"`
	Old  string `json:"old"`
	New  string `json:"new"`
}

// KeptValue is a value in a field berth manages that the apply leaves in place, and why (never the value).
type KeptValue struct {
	Workload string `json:"workload"`
	Target   string `json:"target"`
	Path     string `json:"path"`
	Reason   string `json:"reason"`
}

// Problem is a workload field that its target cannot honour; it blocks the environment.
type Problem struct {
	Workload string     `json:"workload,omitempty"`
	Target   string     `json:"target"`
	Field    string     `json:"field"`
	Pos      schema.Pos `json:"pos"`
	Message  string     `json:"message"`
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Pos.File != "" {
		fmt.Fprintf(&b, "%s: ", p.Pos)
	}
	if p.Workload != "" {
		fmt.Fprintf(&b, "workload %s: ", p.Workload)
	}
	if p.Field != "" {
		fmt.Fprintf(&b, "%s: ", p.Field)
	}
	fmt.Fprintf(&b, "target %s: %s", p.Target, p.Message)
	return b.String()
}

// Blocked tells whether the plan must not be applied: a policy denies, a target cannot honour a field, or the
// prune safety refused it.
func (p *Plan) Blocked() bool { return p.BlockedReason() != "" }

// BlockedReason says why the plan is blocked, "" when it is not.
func (p *Plan) BlockedReason() string {
	var rs []string
	if p.Refused != "" {
		rs = append(rs, p.Refused)
	}
	for _, f := range p.Findings {
		if f.Severity == policies.Deny {
			rs = append(rs, f.String())
		}
	}
	for _, pr := range p.Problems {
		rs = append(rs, pr.String())
	}
	return strings.Join(rs, "; ")
}

// Empty tells whether the plan has no step.
func (p *Plan) Empty() bool { return len(p.Steps) == 0 }

// Counts returns the number of steps per action.
func (p *Plan) Counts() (create, update, del, migrate int) {
	for _, s := range p.Steps {
		switch s.Action {
		case ActionCreate:
			create++
		case ActionUpdate:
			update++
		case ActionDelete:
			del++
		case ActionMigrate:
			migrate++
		}
	}
	return
}

// Summary is the plan's last line: "Plan: 1 to create, 1 to update, 0 to delete, 0 to migrate."
func (p *Plan) Summary() string {
	c, u, d, m := p.Counts()
	return fmt.Sprintf("Plan: %d to create, %d to update, %d to delete, %d to migrate.", c, u, d, m)
}

// String renders the step on one line: "~ update web on local (spec changed)".
func (s Step) String() string {
	var b strings.Builder
	switch s.Action {
	case ActionCreate:
		fmt.Fprintf(&b, "+ create %s on %s", s.Workload, s.Target)
	case ActionUpdate:
		fmt.Fprintf(&b, "~ update %s on %s", s.Workload, s.Target)
	case ActionMigrate:
		fmt.Fprintf(&b, "> migrate %s from %s to %s", s.Workload, s.FromTarget, s.Target)
	case ActionDelete:
		fmt.Fprintf(&b, "- delete %s on %s", s.Workload, s.Target)
	case ActionRelease:
		fmt.Fprintf(&b, "- release %s of %s on dns %s", s.Name, s.Workload, s.Target)
	default:
		fmt.Fprintf(&b, "? %s %s on %s", s.Action, s.Workload, s.Target)
	}
	if s.Reason != "" {
		fmt.Fprintf(&b, " (%s)", s.Reason)
	}
	return b.String()
}

// String renders the plan for people (see Write).
func (p *Plan) String() string {
	var b bytes.Buffer
	_ = p.Write(&b)
	return b.String()
}

// Write renders the plan for people, in the manner of terraform plan.
func (p *Plan) Write(w io.Writer) error {
	var b strings.Builder
	rev := p.Revision
	if rev == "" {
		rev = "-"
	}
	fmt.Fprintf(&b, "Environment %s at revision %s:\n", p.Environment, rev)
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "  %s\n", s)
		for _, c := range s.Changes {
			fmt.Fprintf(&b, "      %s: %s → %s\n", c.Path, c.Old, c.New)
		}
		for i, ph := range s.Phases {
			fmt.Fprintf(&b, "      %d. %s\n", i+1, ph.Detail)
		}
		if len(s.Phases) > 0 {
			fmt.Fprintf(&b, "      expected: at least %s once %s is ready\n", s.Expected, s.Target)
		}
		if s.Error != "" {
			fmt.Fprintf(&b, "      error: %s\n", s.Error)
		}
	}
	if len(p.Images) > 0 {
		b.WriteString("Images:\n")
		for _, im := range p.Images {
			fmt.Fprintf(&b, "  %s\n", im)
		}
	}
	if len(p.Kept) > 0 {
		b.WriteString("Kept (set outside berth; the apply leaves them):\n")
		for _, k := range p.Kept {
			fmt.Fprintf(&b, "  %s on %s: %s: %s\n", k.Workload, k.Target, k.Path, k.Reason)
		}
	}
	if len(p.Findings) > 0 {
		b.WriteString("Findings:\n")
		for _, f := range p.Findings {
			fmt.Fprintf(&b, "  %s\n", f.String())
		}
	}
	if len(p.Problems) > 0 {
		b.WriteString("Problems:\n")
		for _, pr := range p.Problems {
			fmt.Fprintf(&b, "  %s\n", pr)
		}
	}
	if p.Refused != "" {
		fmt.Fprintf(&b, "Refused: %s\n", p.Refused)
	}
	if p.Empty() {
		b.WriteString("No changes.\n")
	}
	b.WriteString(p.Summary())
	b.WriteString("\n")
	if p.Blocked() {
		b.WriteString("Blocked: nothing will be applied.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Observed is what the targets reported for workload while the plan was made (every target's copy), for callers
// that report on what runs: its replicas and its public endpoints.
func (p *Plan) Observed(workload string) []providers.Observed {
	return p.observed[workload]
}

// DesiredHash is the hash the plan wants workload's objects to carry (of its pinned image, spec and secrets), and
// whether the plan has one for it.
func (p *Plan) DesiredHash(workload string) (string, bool) {
	h, ok := p.hashes[workload]
	return h, ok
}

// ObservedWorkloads names the workloads the targets reported for the environment, sorted.
func (p *Plan) ObservedWorkloads() []string {
	return slices.Sorted(maps.Keys(p.observed))
}
