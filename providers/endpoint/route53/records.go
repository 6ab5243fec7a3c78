package route53

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/endpoint"
)

// memberLabel is the label under which a member's own name lives: "<target>._berth.<name>".
const memberLabel = "_berth"

// targetRE is a target name usable as a DNS label (schema's #Name).
var targetRE = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)

var labelRE = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`)

func validName(n string) bool {
	labels := strings.Split(strings.TrimSuffix(n, "."), ".")
	for _, l := range labels {
		if !labelRE.MatchString(l) {
			return false
		}
	}
	return len(n) <= 254
}

// memberName is the name holding the A/AAAA records of target's member of name.
func memberName(target, name string) string { return target + "." + memberLabel + "." + name }

// view is what berth reads of a name: its ownership record, the record sets at the name, and those below
// _berth.<name>.
type view struct {
	owner   *types.ResourceRecordSet
	atName  []types.ResourceRecordSet
	members map[string][]types.ResourceRecordSet // by member name
}

// sets is every record set of the view that berth would write or remove, the ownership record last.
func (v view) sets() []types.ResourceRecordSet {
	out := slices.Clone(v.atName)
	names := make([]string, 0, len(v.members))
	for n := range v.members {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		out = append(out, v.members[n]...)
	}
	if v.owner != nil {
		out = append(out, *v.owner)
	}
	return out
}

func (r *Router) read(ctx context.Context, name string) (view, error) {
	sets, err := r.list(ctx, name)
	if err != nil {
		return view{}, err
	}
	v := view{members: map[string][]types.ResourceRecordSet{}}
	ownerName, below := endpoint.OwnerRecordName(name), "."+memberLabel+"."+name
	for _, rs := range sets {
		n := aws.ToString(rs.Name)
		switch {
		case n == name:
			v.atName = append(v.atName, rs)
		case n == ownerName && rs.Type == types.RRTypeTxt:
			rs := rs
			v.owner = &rs
		case strings.HasSuffix(n, below):
			v.members[n] = append(v.members[n], rs)
		}
	}
	return v, nil
}

// owned checks that v is owner's: nil when it is, or when the name has nothing at all (then absent is true).
func (v view) owned(owner endpoint.Owner, name string) (absent bool, err error) {
	if v.owner == nil {
		if len(v.atName) == 0 && len(v.members) == 0 {
			return true, nil
		}
		what := "record sets below " + memberLabel + "." + name
		if len(v.atName) > 0 {
			what = fmt.Sprintf("a %s record set", v.atName[0].Type)
		}
		return false, fmt.Errorf("%s: %w (%s, no ownership record %s)", name, endpoint.ErrNotOwned, what,
			endpoint.OwnerRecordName(name))
	}
	want := endpoint.OwnerText(owner)
	if len(v.owner.ResourceRecords) != 1 || strings.Trim(aws.ToString(v.owner.ResourceRecords[0].Value), `"`) != want {
		who := "not berth's"
		if len(v.owner.ResourceRecords) == 1 {
			if o, ok := endpoint.ParseOwnerText(aws.ToString(v.owner.ResourceRecords[0].Value)); ok {
				who = o.String() + "'s"
			}
		}
		return false, fmt.Errorf("%s: %w (its ownership record is %s, not %s's)", name, endpoint.ErrNotOwned, who, owner)
	}
	for _, rs := range v.atName {
		if rs.Type != types.RRTypeCname || rs.SetIdentifier == nil || rs.Weight == nil {
			return false, fmt.Errorf("%s: %w (a %s record set berth did not write beside berth's)", name,
				endpoint.ErrNotOwned, rs.Type)
		}
	}
	return false, nil
}

// record reads the members back from an owned view.
func (v view) record(name string) *endpoint.Record {
	rec := &endpoint.Record{Name: name}
	for _, rs := range v.atName {
		target := aws.ToString(rs.SetIdentifier)
		m := endpoint.Member{Target: target, Weight: int(aws.ToInt64(rs.Weight))}
		if rec.TTL == 0 {
			rec.TTL = time.Duration(aws.ToInt64(rs.TTL)) * time.Second
		}
		var to string
		if len(rs.ResourceRecords) > 0 {
			to = aws.ToString(rs.ResourceRecords[0].Value)
		}
		if mn := memberName(target, name); endpoint.Fqdn(to) == mn {
			for _, t := range []types.RRType{types.RRTypeA, types.RRTypeAaaa} {
				for _, s := range v.members[mn] {
					if s.Type == t {
						for _, rr := range s.ResourceRecords {
							m.Addresses = append(m.Addresses, aws.ToString(rr.Value))
						}
					}
				}
			}
		} else {
			m.Addresses = []string{strings.TrimSuffix(to, ".")}
		}
		rec.Members = append(rec.Members, m)
	}
	slices.SortFunc(rec.Members, func(a, b endpoint.Member) int { return strings.Compare(a.Target, b.Target) })
	if rec.TTL == 0 && v.owner != nil {
		rec.TTL = time.Duration(aws.ToInt64(v.owner.TTL)) * time.Second
	}
	return rec
}

// Get returns what name serves for owner; (nil, nil) when it has no records at all.
func (r *Router) Get(ctx context.Context, owner endpoint.Owner, name string) (*endpoint.Record, error) {
	n, err := r.checkName(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("route53: get %s: %w", endpoint.Fqdn(name), err)
	}
	v, err := r.read(ctx, n)
	if err != nil {
		return nil, fmt.Errorf("route53: get %s: %w", n, err)
	}
	absent, err := v.owned(owner, n)
	if err != nil || absent {
		return nil, err
	}
	return v.record(n), nil
}

// desired is the layout of members at name (see the package doc), the ownership record last.
func desired(owner endpoint.Owner, name string, ttl int64, members []endpoint.Member) []types.ResourceRecordSet {
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b endpoint.Member) int { return strings.Compare(a.Target, b.Target) })
	var perMember, cnames []types.ResourceRecordSet
	for _, m := range ms {
		to := strings.TrimSuffix(m.Addresses[0], ".") + "."
		if !m.HostName() {
			to = memberName(m.Target, name)
			var v4, v6 []string
			for _, a := range m.Addresses {
				ip := net.ParseIP(a)
				if ip.To4() != nil {
					v4 = append(v4, ip.String())
				} else {
					v6 = append(v6, ip.String())
				}
			}
			for _, x := range []struct {
				t  types.RRType
				as []string
			}{{types.RRTypeA, v4}, {types.RRTypeAaaa, v6}} {
				if len(x.as) > 0 {
					slices.Sort(x.as)
					perMember = append(perMember, plain(to, x.t, ttl, slices.Compact(x.as)...))
				}
			}
		}
		cn := plain(name, types.RRTypeCname, ttl, to)
		cn.SetIdentifier, cn.Weight = aws.String(m.Target), aws.Int64(int64(m.Weight))
		cnames = append(cnames, cn)
	}
	out := append(perMember, cnames...)
	return append(out, plain(endpoint.OwnerRecordName(name), types.RRTypeTxt, ttl, `"`+endpoint.OwnerText(owner)+`"`))
}

func plain(name string, t types.RRType, ttl int64, values ...string) types.ResourceRecordSet {
	rs := types.ResourceRecordSet{Name: aws.String(name), Type: t, TTL: aws.Int64(ttl)}
	for _, v := range values {
		rs.ResourceRecords = append(rs.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
	}
	return rs
}

type setKey struct{ name, typ, id string }

func keyOf(rs types.ResourceRecordSet) setKey {
	return setKey{endpoint.Fqdn(aws.ToString(rs.Name)), string(rs.Type), aws.ToString(rs.SetIdentifier)}
}

// same tells whether two sets of one key hold the same TTL, weight and values (in any order).
func same(a, b types.ResourceRecordSet) bool {
	if aws.ToInt64(a.TTL) != aws.ToInt64(b.TTL) || (a.Weight == nil) != (b.Weight == nil) ||
		aws.ToInt64(a.Weight) != aws.ToInt64(b.Weight) || a.AliasTarget != nil || b.AliasTarget != nil {
		return false
	}
	values := func(rs types.ResourceRecordSet) []string {
		var vs []string
		for _, rr := range rs.ResourceRecords {
			v := aws.ToString(rr.Value)
			if rs.Type == types.RRTypeCname {
				v = strings.ToLower(v) // DNS names compare without case
			}
			vs = append(vs, v)
		}
		slices.Sort(vs)
		return vs
	}
	return slices.Equal(values(a), values(b))
}

// diff is the change batch from current to want: DELETE (with the exact current set) for what goes, CREATE for
// what is new, UPSERT for what changed, in want's order after the deletes; nothing when they agree.
func diff(current, want []types.ResourceRecordSet) []types.Change {
	have := map[setKey]types.ResourceRecordSet{}
	for _, rs := range current {
		have[keyOf(rs)] = rs
	}
	wanted := map[setKey]bool{}
	for _, rs := range want {
		wanted[keyOf(rs)] = true
	}
	var out []types.Change
	for _, rs := range current {
		if !wanted[keyOf(rs)] {
			out = append(out, types.Change{Action: types.ChangeActionDelete, ResourceRecordSet: &rs})
		}
	}
	for _, rs := range want {
		cur, ok := have[keyOf(rs)]
		switch {
		case !ok:
			out = append(out, types.Change{Action: types.ChangeActionCreate, ResourceRecordSet: &rs})
		case !same(cur, rs):
			out = append(out, types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: &rs})
		}
	}
	return out
}

// checkMembers is endpoint.CheckMembers plus what a Route 53 name needs: addresses (not a watch) that are IPs or
// one host name, and targets usable as DNS labels.
func checkMembers(members []endpoint.Member) error {
	if err := endpoint.CheckMembers(members, true); err != nil {
		return err
	}
	for _, m := range members {
		switch {
		case len(m.Addresses) == 0:
			return providers.Permanent(fmt.Errorf("%w: member %s has no address (Route 53 cannot follow a watch)", endpoint.ErrBadMember, m.Target))
		case !targetRE.MatchString(m.Target):
			return providers.Permanent(fmt.Errorf("%w: member target %q is not a DNS label (lower-case letters, digits, '-')", endpoint.ErrBadMember, m.Target))
		case m.HostName():
			if !validName(endpoint.Fqdn(m.Addresses[0])) {
				return providers.Permanent(fmt.Errorf("%w: member %s: %q is not a host name", endpoint.ErrBadMember, m.Target, m.Addresses[0]))
			}
		default:
			for _, a := range m.Addresses {
				if net.ParseIP(a) == nil {
					return providers.Permanent(fmt.Errorf("%w: member %s: %q is not an IP address (a member is IP addresses or exactly one host name)", endpoint.ErrBadMember, m.Target, a))
				}
			}
		}
	}
	return nil
}

// Set makes name serve exactly members, in one change batch, and returns once it is INSYNC.
func (r *Router) Set(ctx context.Context, owner endpoint.Owner, name string, ttl time.Duration, members []endpoint.Member) error {
	fail := func(err error) error { return fmt.Errorf("route53: set %s: %w", endpoint.Fqdn(name), err) }
	if err := checkMembers(members); err != nil {
		return fail(err)
	}
	if ttl < 0 {
		return fail(providers.Permanent(fmt.Errorf("TTL %v is negative", ttl)))
	}
	n, err := r.checkName(ctx, name)
	if err != nil {
		return fail(err)
	}
	for _, m := range members {
		if len(memberName(m.Target, n)) > 254 {
			return fail(providers.Permanent(fmt.Errorf("%w: member %s: the name %s is too long for DNS", endpoint.ErrBadMember, m.Target, memberName(m.Target, n))))
		}
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	return r.apply(ctx, owner, n, "set", desired(owner, n, secs, members))
}

// Delete removes every record set berth wrote for name, the ownership record last, in one change batch.
func (r *Router) Delete(ctx context.Context, owner endpoint.Owner, name string) error {
	n, err := r.checkName(ctx, name)
	if err != nil {
		return fmt.Errorf("route53: delete %s: %w", endpoint.Fqdn(name), err)
	}
	return r.apply(ctx, owner, n, "delete", nil)
}

// apply reads name, checks owner owns it (or that it is free, for a Set), and changes it to want (nil: nothing).
// A batch Route 53 refuses is read again once: ErrNotOwned if the name stopped being owner's meanwhile.
func (r *Router) apply(ctx context.Context, owner endpoint.Owner, name, verb string, want []types.ResourceRecordSet) error {
	fail := func(err error) error { return fmt.Errorf("route53: %s %s: %w", verb, name, err) }
	v, err := r.read(ctx, name)
	if err != nil {
		return fail(err)
	}
	absent, err := v.owned(owner, name)
	if err != nil {
		return err
	}
	if absent && want == nil {
		return nil
	}
	changes := diff(v.sets(), want)
	if len(changes) == 0 {
		return nil
	}
	err = r.change(ctx, "berth: "+verb+" "+name+" for "+owner.String(), changes)
	var icb *types.InvalidChangeBatch
	if errors.As(err, &icb) {
		// The name changed under berth (a record someone made between the read and the batch), or an earlier try
		// of this very batch went through and its answer was lost: read again to tell.
		if again, rerr := r.read(ctx, name); rerr == nil {
			if _, oerr := again.owned(owner, name); oerr != nil {
				return oerr
			}
			if len(diff(again.sets(), want)) == 0 {
				r.log.DebugContext(ctx, "an earlier try of the change batch was applied", "name", name, "verb", verb)
				return nil
			}
		}
		return fail(fmt.Errorf("%w: %s", err, strings.Join(icb.Messages, "; ")))
	}
	if err != nil {
		return fail(err)
	}
	r.log.DebugContext(ctx, "changed", "name", name, "verb", verb, "changes", len(changes))
	return nil
}

// Names lists every name of the zone with an ownership record of instance.
func (r *Router) Names(ctx context.Context, instance string) (map[string]endpoint.Owner, error) {
	sets, err := r.list(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("route53: list names in %s: %w", r.zoneID, err)
	}
	out := map[string]endpoint.Owner{}
	for _, rs := range sets {
		n, ok := strings.CutPrefix(aws.ToString(rs.Name), "_berth-owner.")
		if !ok || rs.Type != types.RRTypeTxt || len(rs.ResourceRecords) != 1 {
			continue
		}
		if o, ok := endpoint.ParseOwnerText(aws.ToString(rs.ResourceRecords[0].Value)); ok && o.Instance == instance {
			out[n] = o
		}
	}
	return out, nil
}
