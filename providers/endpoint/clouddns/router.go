package clouddns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	dnsv1 "google.golang.org/api/dns/v1"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
)

func jitter(d time.Duration) time.Duration { return rand.N(d) }

// inZone returns name as an Fqdn, checked to be inside the zone and not its apex.
func (r *Router) inZone(ctx context.Context, name string) (string, error) {
	zone, err := r.zoneName(ctx)
	if err != nil {
		return "", err
	}
	n := endpoint.Fqdn(name)
	if n == zone || !strings.HasSuffix(n, "."+zone) {
		return "", providers.Permanent(fmt.Errorf("%s is not a name inside the zone %s (%s) and below its apex", n, zone,
			r.settings.Zone))
	}
	return n, nil
}

// read reads what berth may have written for name: the sets at the name and the ownership set, then, when the
// ownership is owner's (else ErrNotOwned, and nothing more is read), the per-member names of the weighted items
// and of extra targets. A free name (no ownership, nothing at it) with records at one of those per-member names
// is ErrNotOwned too: berth did not write them.
func (r *Router) read(ctx context.Context, owner endpoint.Owner, name string, extra []string) (*state, error) {
	at, err := r.list(ctx, name, "")
	if err != nil {
		return nil, err
	}
	own, err := r.list(ctx, endpoint.OwnerRecordName(name), "TXT")
	if err != nil {
		return nil, err
	}
	st := &state{at: at, owner: own, members: map[string][]*dnsv1.ResourceRecordSet{}}
	if err := st.check(owner, name); err != nil {
		return nil, err
	}
	targets := map[string]bool{}
	for _, t := range extra {
		targets[t] = true
	}
	for _, s := range at {
		if s.RoutingPolicy == nil || s.RoutingPolicy.Wrr == nil {
			continue
		}
		for _, it := range s.RoutingPolicy.Wrr.Items {
			for _, d := range it.Rrdatas {
				if t, ok := targetOf(name, d); ok {
					targets[t] = true
				}
			}
		}
	}
	for t := range targets {
		sets, err := r.list(ctx, memberName(name, t), "")
		if err != nil {
			return nil, err
		}
		if len(sets) > 0 {
			st.members[t] = sets
		}
		if len(sets) > 0 && len(own) == 0 {
			// The name is free, yet someone wrote at the per-member name berth would take.
			return nil, fmt.Errorf("%s has %s records at %s and no ownership record %s: %w", name, sets[0].Type,
				memberName(name, t), endpoint.OwnerRecordName(name), endpoint.ErrNotOwned)
		}
	}
	return st, nil
}

// Get implements endpoint.Router.
func (r *Router) Get(ctx context.Context, owner endpoint.Owner, name string) (*endpoint.Record, error) {
	n, err := r.inZone(ctx, name)
	if err != nil {
		return nil, r.fail("get", name, err)
	}
	st, err := r.read(ctx, owner, n, nil)
	if err != nil {
		return nil, r.fail("get", n, err)
	}
	rec, err := st.record(n)
	if err != nil {
		return nil, r.fail("get", n, err)
	}
	return rec, nil
}

// Set implements endpoint.Router: one change replaces what differs (a set that changes is deleted as read and
// added anew), and Set returns once Cloud DNS says the change is done.
func (r *Router) Set(ctx context.Context, owner endpoint.Owner, name string, ttl time.Duration, members []endpoint.Member) error {
	if err := endpoint.CheckMembers(members, true); err != nil {
		return r.fail("set", name, err)
	}
	n, err := r.inZone(ctx, name)
	if err != nil {
		return r.fail("set", name, err)
	}
	want, err := desired(owner, n, ttl, members)
	if err != nil {
		return r.fail("set", n, err)
	}
	targets := make([]string, 0, len(members))
	for _, m := range members {
		targets = append(targets, m.Target)
	}
	if err := r.converge(ctx, owner, n, targets, want); err != nil {
		return r.fail("set", n, err)
	}
	return nil
}

// Delete implements endpoint.Router: one change deletes the weighted CNAME, the per-member names and the
// ownership record (listed last).
func (r *Router) Delete(ctx context.Context, owner endpoint.Owner, name string) error {
	n, err := r.inZone(ctx, name)
	if err != nil {
		return r.fail("delete", name, err)
	}
	if err := r.converge(ctx, owner, n, nil, &state{}); err != nil {
		return r.fail("delete", n, err)
	}
	return nil
}

// converge reads name, checks the ownership, and makes the change from what is there to want, again when the
// change lost a race with another writer. When a round after a lost race finds nothing left to change (a change
// whose answer was lost took effect), it waits for the zone's latest change to be done.
func (r *Router) converge(ctx context.Context, owner endpoint.Owner, name string, targets []string, want *state) error {
	for round := 1; ; round++ {
		cur, err := r.read(ctx, owner, name, targets)
		if err != nil {
			return err
		}
		c := diff(cur, want)
		if len(c.Additions) == 0 && len(c.Deletions) == 0 {
			if round > 1 {
				return r.settle(ctx)
			}
			return nil
		}
		r.log.DebugContext(ctx, "changing record sets", "name", name, "additions", len(c.Additions),
			"deletions", len(c.Deletions))
		err = r.change(ctx, name, c)
		if err == nil || !errors.Is(err, errConflict) {
			return err
		}
		if round >= conflictAttempts {
			return fmt.Errorf("after %d rounds: %w", round, err)
		}
		r.log.DebugContext(ctx, "change lost a race, reading again", "name", name, "round", round, "err", err)
	}
}

// settle waits until the zone's latest change is done.
func (r *Router) settle(ctx context.Context) error {
	var page *dnsv1.ChangesListResponse
	err := r.retry().Do(ctx, "changes.list", func(ctx context.Context) error {
		var err error
		page, err = r.svc.Changes.List(r.settings.Project, r.settings.Zone).SortBy("changeSequence").
			SortOrder("descending").MaxResults(1).Context(ctx).Do()
		return err
	})
	if err != nil || len(page.Changes) == 0 {
		return err
	}
	return r.await(ctx, page.Changes[0])
}

// Names implements endpoint.Lister: every ownership record of instance in the zone, by the name it owns (an Fqdn).
func (r *Router) Names(ctx context.Context, instance string) (map[string]endpoint.Owner, error) {
	sets, err := r.list(ctx, "", "")
	if err != nil {
		return nil, r.fail("names", "", err)
	}
	prefix := endpoint.OwnerRecordName("x")
	prefix = prefix[:len(prefix)-len("x.")]
	out := map[string]endpoint.Owner{}
	for _, s := range sets {
		name, ok := strings.CutPrefix(endpoint.Fqdn(s.Name), prefix)
		if !ok || s.Type != "TXT" || len(s.Rrdatas) != 1 {
			continue
		}
		if o, ok := endpoint.ParseOwnerText(s.Rrdatas[0]); ok && o.Instance == instance {
			out[name] = o
		}
	}
	return out, nil
}
