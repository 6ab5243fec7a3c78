package azuredns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/dns/armdns"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure/azcred"
	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/schema"
)

// Type is the router type of a `dns:` entry.
const Type = "azuredns"

// Defaults of the Router's tunables.
const (
	// DefaultAttempts bounds the tries of one call that fails transiently (on top of the SDK's own retries of
	// throttling and 5xx).
	DefaultAttempts  = 5
	DefaultRetryBase = time.Second
	DefaultRetryMax  = 20 * time.Second
	// DefaultCallTimeout bounds one attempt of one call.
	DefaultCallTimeout = 30 * time.Second
	// DefaultConflictRetries bounds how often a Set or Delete reads the name again after a 412 (another writer
	// changed a record set between berth's read and its write).
	DefaultConflictRetries = 5
)

func init() { endpoint.Register(Type, New) }

// Settings are a `dns:` entry's decoded settings.
type Settings struct {
	SubscriptionID, ResourceGroup string
	// Zone is the zone's DNS name, lower case, without its dot.
	Zone string
	// Credential is the credential chain: default, environment, workload-identity, managed-identity or cli.
	Credential string
	// Endpoint is Resource Manager's base URL ("" for the public cloud).
	Endpoint string
}

// settingsKeys are the known settings, sorted, for errors.
const settingsKeys = "credential, endpoint, resourceGroup, subscriptionId, zone"

// ParseSettings decodes t's settings.
func ParseSettings(t schema.Target) (Settings, error) {
	s := Settings{Credential: "default"}
	keys := make([]string, 0, len(t.Settings))
	for k := range t.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fail := func(format string, args ...any) (Settings, error) {
		return s, fmt.Errorf("%s: dns %q: %s", t.Pos, t.Name, fmt.Sprintf(format, args...))
	}
	for _, k := range keys {
		v, ok := t.Settings[k].(string)
		if !ok || v == "" {
			return fail("settings.%s: want a non-empty string, got %T", k, t.Settings[k])
		}
		switch k {
		case "subscriptionId":
			s.SubscriptionID = v
		case "resourceGroup":
			s.ResourceGroup = v
		case "zone":
			z := strings.ToLower(strings.TrimSuffix(v, "."))
			if !validHost(z) || !strings.Contains(z, ".") {
				return fail("settings.zone: %q is not a zone's DNS name (like \"example.com\")", v)
			}
			s.Zone = z
		case "credential":
			switch v {
			case "default", "environment", "workload-identity", "managed-identity", "cli":
			default:
				return fail("settings.credential: %q is not one of default, environment, workload-identity, managed-identity, cli", v)
			}
			s.Credential = v
		case "endpoint":
			if !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "http://") {
				return fail("settings.endpoint: %q is not an http(s) URL", v)
			}
			s.Endpoint = strings.TrimSuffix(v, "/")
		default:
			return fail("settings.%s: unknown setting (known: %s)", k, settingsKeys)
		}
	}
	for _, r := range []struct{ k, v string }{{"subscriptionId", s.SubscriptionID}, {"resourceGroup", s.ResourceGroup}, {"zone", s.Zone}} {
		if r.v == "" {
			return fail("settings.%s is required", r.k)
		}
	}
	return s, nil
}

// Router serves stable names as record sets of one Azure DNS zone. Build it with New or NewWithCredential; the
// exported tunables may be changed before the first call.
type Router struct {
	client   *armdns.RecordSetsClient
	s        Settings
	entry    string
	credKind string
	log      *slog.Logger

	// Attempts, RetryBase, RetryMax and CallTimeout shape the retries of transient failures of each call.
	Attempts            int
	RetryBase, RetryMax time.Duration
	CallTimeout         time.Duration
	// ConflictRetries bounds the re-reads after a 412.
	ConflictRetries int
}

// New builds the router of the `dns:` entry t, with credentials from the chain settings.credential names. It is
// the registered factory. Building it reaches nothing: the first token is asked for by the first call.
func New(t schema.Target, opts endpoint.Options) (endpoint.Router, error) {
	s, err := ParseSettings(t)
	if err != nil {
		return nil, err
	}
	copts := azcore.ClientOptions{Cloud: azcred.Cloud(s.Endpoint)}
	cred, err := azcred.Chain(s.Credential, copts)
	if err != nil {
		return nil, fmt.Errorf("dns %q: settings.credential %q: %w", t.Name, s.Credential, err)
	}
	r, err := NewWithCredential(t, opts, cred, nil)
	if err != nil {
		return nil, err
	}
	r.credKind = s.Credential
	return r, nil
}

// NewWithCredential builds the router with an explicit credential. copts (may be nil) tunes the SDK client: tests
// set Transport (to trust the emulator's certificate) and Retry (short delays). Its Cloud is always set from
// settings.endpoint.
func NewWithCredential(t schema.Target, opts endpoint.Options, cred azcore.TokenCredential, copts *arm.ClientOptions) (*Router, error) {
	s, err := ParseSettings(t)
	if err != nil {
		return nil, err
	}
	var o arm.ClientOptions
	if copts != nil {
		o = *copts
	}
	o.Cloud = azcred.Cloud(s.Endpoint)
	if strings.HasPrefix(s.Endpoint, "http://") {
		o.InsecureAllowCredentialWithHTTP = true
	}
	client, err := armdns.NewRecordSetsClient(s.SubscriptionID, azcred.Wrap(cred), &o)
	if err != nil {
		return nil, fmt.Errorf("dns %q: record sets client: %w", t.Name, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{client: client, s: s, entry: t.Name, credKind: "given to NewWithCredential",
		log:      log.With("router", Type, "dns", t.Name, "zone", s.Zone),
		Attempts: DefaultAttempts, RetryBase: DefaultRetryBase, RetryMax: DefaultRetryMax, CallTimeout: DefaultCallTimeout,
		ConflictRetries: DefaultConflictRetries}, nil
}

// Type is "azuredns".
func (r *Router) Type() string { return Type }

// Capabilities: no weights (Azure DNS record sets have none), host names (as a CNAME), TTLs of whole seconds from
// one second.
func (r *Router) Capabilities() endpoint.Capabilities {
	return endpoint.Capabilities{Weighted: false, HostNames: true, MinTTL: time.Second}
}

// relative is name relative to the zone; a name outside the zone, or its apex, is a permanent error.
func (r *Router) relative(name string) (string, error) {
	fq := strings.TrimSuffix(endpoint.Fqdn(name), ".")
	switch {
	case fq == r.s.Zone:
		return "", providers.Permanent(fmt.Errorf("azuredns: %s is the apex of zone %s; a stable name must be a name inside it", name, r.s.Zone))
	case !strings.HasSuffix(fq, "."+r.s.Zone) || !validHost(fq):
		return "", providers.Permanent(fmt.Errorf("azuredns: %s is not a DNS name inside zone %s", name, r.s.Zone))
	}
	rel := strings.TrimSuffix(fq, "."+r.s.Zone)
	if rel == memberLabel || strings.HasPrefix(rel, memberLabel+".") {
		return "", providers.Permanent(fmt.Errorf("azuredns: %s: names starting with %s. are berth's own", name, memberLabel))
	}
	return rel, nil
}

// slots are the record sets a name may have: its CNAME, the A and AAAA of its per-member name, and the A, AAAA
// and TXT at the name itself. Berth writes the first three only; one of the others is foreign unless it carries
// the owner's text (an A/AAAA at the name of the layout before the name was always a CNAME), and is then deleted
// before the CNAME is written, as Azure refuses a CNAME beside other records.
func slots(rel string) []slot {
	m := memberLabel + "." + rel
	return []slot{{rel, armdns.RecordTypeCNAME}, {m, armdns.RecordTypeA}, {m, armdns.RecordTypeAAAA},
		{rel, armdns.RecordTypeA}, {rel, armdns.RecordTypeAAAA}, {rel, armdns.RecordTypeTXT}}
}

// deleteOrder is the order record sets of a name are deleted in: first what answers the name (its CNAME, or an
// A/AAAA of the former layout), so that it never points at a record set already gone; then the TXT and the
// per-member record sets, which carry the ownership too, so that an interrupted Delete leaves record sets Get
// and Names still know as the owner's, and the next Delete removes.
func deleteOrder(rel string) []slot {
	ss := slots(rel)
	return []slot{ss[0], ss[4], ss[3], ss[5], ss[2], ss[1]}
}

// state is what a name holds now, by slot.
type state map[slot]*armdns.RecordSet

// read gets every slot of rel, at once.
func (r *Router) read(ctx context.Context, name, rel string) (state, error) {
	ss := slots(rel)
	sets := make([]*armdns.RecordSet, len(ss))
	errs := make([]error, len(ss))
	var wg sync.WaitGroup
	for i, sl := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.do(ctx, "get", sl, func(ctx context.Context) error {
				resp, err := r.client.Get(ctx, r.s.ResourceGroup, r.s.Zone, sl.rel, sl.typ, nil)
				if err != nil {
					return err
				}
				sets[i] = &resp.RecordSet
				return nil
			})
			if isNotFound(errs[i]) {
				errs[i] = nil
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	st := state{}
	for i, sl := range ss {
		if sets[i] != nil {
			st[sl] = sets[i]
		}
	}
	return st, nil
}

// owned checks that every record set of the name is owner's.
func (st state) owned(owner endpoint.Owner, name string) error {
	want := endpoint.OwnerText(owner)
	for sl, rs := range st {
		if got, ok := lowerMeta(rs)[MetaOwner]; !ok || got != want {
			who := "no berth ownership metadata"
			if o, ok := endpoint.ParseOwnerText(got); ok {
				who = "owned by " + o.String()
			}
			return providers.Permanent(fmt.Errorf("azuredns: %s: the %s record set %s has %s: %w", name, sl.typ, sl.rel, who, endpoint.ErrNotOwned))
		}
	}
	return nil
}

// home is the record set whose metadata Get reads: the CNAME at the name; else (a former layout's) A or AAAA
// at the name; else any, a per-member one left by an interrupted Delete, which has no members.
func (st state) home(rel string) *armdns.RecordSet {
	for _, sl := range []slot{{rel, armdns.RecordTypeCNAME}, {rel, armdns.RecordTypeA}, {rel, armdns.RecordTypeAAAA}} {
		if rs := st[sl]; rs != nil {
			return rs
		}
	}
	for _, sl := range slots(rel) {
		if rs := st[sl]; rs != nil {
			return rs
		}
	}
	return nil
}

// Get returns what name serves for owner, from the metadata of the CNAME at the name. Every record set of the
// name (a foreign A at it included) must carry the owner's text, else ErrNotOwned.
func (r *Router) Get(ctx context.Context, owner endpoint.Owner, name string) (*endpoint.Record, error) {
	rel, err := r.relative(name)
	if err != nil {
		return nil, err
	}
	st, err := r.read(ctx, name, rel)
	if err != nil {
		return nil, fmt.Errorf("azuredns: get %s: %w", name, err)
	}
	if len(st) == 0 {
		return nil, nil
	}
	if err := st.owned(owner, name); err != nil {
		return nil, err
	}
	h := st.home(rel)
	ms, err := members(lowerMeta(h))
	if err != nil {
		return nil, providers.Permanent(fmt.Errorf("azuredns: get %s: %w", name, err))
	}
	rec := &endpoint.Record{Name: endpoint.Fqdn(name), Members: ms}
	if h.Properties != nil && h.Properties.TTL != nil {
		rec.TTL = time.Duration(*h.Properties.TTL) * time.Second
	}
	return rec, nil
}

// errConflict is a 412 met while changing a name: read it again.
var errConflict = errors.New("a record set changed since it was read")

// Set makes name serve members. The record sets are written one by one (Azure DNS has no batch), each with
// If-Match on the etag read (If-None-Match "*" for a new one); a 412 reads the name again and starts over. The
// per-member record sets are written before the CNAME at the name points at them, and deleted after it no
// longer does.
func (r *Router) Set(ctx context.Context, owner endpoint.Owner, name string, ttl time.Duration, ms []endpoint.Member) error {
	rel, err := r.relative(name)
	if err != nil {
		return err
	}
	if err := endpoint.CheckMembers(ms, true); err != nil {
		return fmt.Errorf("azuredns: set %s: %w", name, err)
	}
	if err := checkAddresses(ms); err != nil {
		return fmt.Errorf("azuredns: set %s: %w", name, err)
	}
	if ttl < time.Second {
		return providers.Permanent(fmt.Errorf("azuredns: set %s: TTL %v: Azure DNS takes whole seconds from 1s", name, ttl))
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	wants, err := layout(rel, r.s.Zone, owner, ms)
	if err != nil {
		return fmt.Errorf("azuredns: set %s: %w", name, err)
	}
	return r.converge(ctx, "set", owner, name, rel, func(st state) error { return r.apply(ctx, rel, st, wants, secs) })
}

// Delete removes every record set berth wrote for name: the CNAME at the name first (the name is then
// unanswered at once, never a CNAME to a record set already gone), then the per-member ones, which carry the
// ownership as well, the A last.
func (r *Router) Delete(ctx context.Context, owner endpoint.Owner, name string) error {
	rel, err := r.relative(name)
	if err != nil {
		return err
	}
	return r.converge(ctx, "delete", owner, name, rel, func(st state) error {
		for _, sl := range deleteOrder(rel) {
			if rs := st[sl]; rs != nil {
				if err := r.remove(ctx, sl, rs); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// converge reads the name, checks its ownership and runs change, again after a 412, at most ConflictRetries
// times more.
func (r *Router) converge(ctx context.Context, op string, owner endpoint.Owner, name, rel string, change func(state) error) error {
	for round := 0; ; round++ {
		st, err := r.read(ctx, name, rel)
		if err != nil {
			return fmt.Errorf("azuredns: %s %s: %w", op, name, err)
		}
		if err := st.owned(owner, name); err != nil {
			return err
		}
		err = change(st)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errConflict) && round < r.ConflictRetries:
			r.log.DebugContext(ctx, "record set changed under berth, reading again", "name", name, "round", round+1)
			continue
		}
		return fmt.Errorf("azuredns: %s %s: %w", op, name, err)
	}
}

// apply writes wants (layout's order: the per-member record sets, then the CNAME at the name) over st, in the
// order that keeps the name answered: the per-member record sets are written before the CNAME points at them,
// and those no longer wanted are deleted after it no longer does. An A/AAAA at the name itself (of the layout
// before the name was always a CNAME) is deleted right before the CNAME is created, as Azure refuses a CNAME
// beside other records: that one upgrade leaves the name unanswered for an API call; nothing else does.
func (r *Router) apply(ctx context.Context, rel string, st state, wants []want, ttl int64) error {
	wanted := map[slot]bool{}
	for _, w := range wants {
		wanted[w.slot] = true
	}
	gone := map[slot]bool{}
	for _, w := range wants {
		if w.slot == (slot{rel, armdns.RecordTypeCNAME}) {
			for _, sl := range deleteOrder(rel) {
				if sl.rel == rel && sl != w.slot && st[sl] != nil {
					if err := r.remove(ctx, sl, st[sl]); err != nil {
						return err
					}
					gone[sl] = true
				}
			}
		}
		if err := r.upsert(ctx, w, st[w.slot], ttl); err != nil {
			return err
		}
	}
	// What is left: record sets berth wrote that the new layout does not have.
	for _, sl := range deleteOrder(rel) {
		if rs := st[sl]; rs != nil && !wanted[sl] && !gone[sl] {
			if err := r.remove(ctx, sl, rs); err != nil {
				return err
			}
		}
	}
	return nil
}

// upsert writes w unless cur already is it.
func (r *Router) upsert(ctx context.Context, w want, cur *armdns.RecordSet, ttl int64) error {
	if w.same(cur, ttl) {
		return nil
	}
	opts := &armdns.RecordSetsClientCreateOrUpdateOptions{IfNoneMatch: to.Ptr("*")}
	if cur != nil && cur.Etag != nil {
		opts = &armdns.RecordSetsClientCreateOrUpdateOptions{IfMatch: cur.Etag}
	}
	body := w.wire(ttl)
	return r.do(ctx, "put", w.slot, func(ctx context.Context) error {
		_, err := r.client.CreateOrUpdate(ctx, r.s.ResourceGroup, r.s.Zone, w.rel, w.typ, body, opts)
		return err
	})
}

// remove deletes the record set rs at sl, If-Match its etag.
func (r *Router) remove(ctx context.Context, sl slot, rs *armdns.RecordSet) error {
	var opts *armdns.RecordSetsClientDeleteOptions
	if rs.Etag != nil {
		opts = &armdns.RecordSetsClientDeleteOptions{IfMatch: rs.Etag}
	}
	return r.do(ctx, "delete", sl, func(ctx context.Context) error {
		_, err := r.client.Delete(ctx, r.s.ResourceGroup, r.s.Zone, sl.rel, sl.typ, opts)
		return err
	})
}

// Names lists every name of the zone whose record sets carry an ownership text of instance: a record set's name,
// or for a per-member record set the name under _berth. (so that what an interrupted Delete left is found too).
func (r *Router) Names(ctx context.Context, instance string) (map[string]endpoint.Owner, error) {
	var out map[string]endpoint.Owner
	err := r.retry().Do(ctx, "azuredns: list record sets of zone "+r.s.Zone, func(ctx context.Context) error {
		out = map[string]endpoint.Owner{}
		pager := r.client.NewListByDNSZonePager(r.s.ResourceGroup, r.s.Zone, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return r.wrap("list", slot{}, err)
			}
			for _, rs := range page.Value {
				o, ok := endpoint.ParseOwnerText(lowerMeta(rs)[MetaOwner])
				if !ok || o.Instance != instance || rs.Name == nil {
					continue
				}
				rel := strings.ToLower(*rs.Name)
				if rel == memberLabel {
					continue // not a name berth writes
				}
				rel = strings.TrimPrefix(rel, memberLabel+".") // a per-member record set: its name is the rest
				out[endpoint.Fqdn(rel+"."+r.s.Zone)] = o
			}
		}
		return nil
	})
	if err != nil {
		return nil, r.explain(err)
	}
	return out, nil
}

// retry is the retry of one call.
func (r *Router) retry() providers.Retry {
	return providers.Retry{Base: r.RetryBase, Max: r.RetryMax, Attempts: max(r.Attempts, 1), Timeout: r.CallTimeout,
		Classify: classify, Logger: r.log}
}

// do runs one call on sl with retries; its error names the call and keeps the SDK's error. A 412 comes back as
// errConflict.
func (r *Router) do(ctx context.Context, op string, sl slot, call func(context.Context) error) error {
	err := r.retry().Do(ctx, op+" "+string(sl.typ)+" record set "+sl.rel, func(ctx context.Context) error {
		return r.wrap(op, sl, call(ctx))
	})
	if err == nil {
		return nil
	}
	if isStatus(err, http.StatusPreconditionFailed) {
		return fmt.Errorf("%w: %w", errConflict, err)
	}
	return r.explain(err)
}

func isStatus(err error, status int) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == status
}

// isNotFound: the record set does not exist (not: its zone, resource group or subscription).
func isNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound &&
		(re.ErrorCode == "NotFound" || re.ErrorCode == "")
}

// classify sorts a failed call: throttling, 5xx, timeouts and dropped connections are transient; a 412 and a
// missing record set are for the caller; the rest (bad requests, denied access, a missing zone, a credential
// that got no token) will not pass by retrying.
func classify(err error) providers.Class {
	var ce *azcred.Error
	if errors.As(err, &ce) {
		if azcred.Transient(ce.Err) {
			return providers.Transient
		}
		return providers.Invalid
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		if errors.Is(err, providers.ErrPermanent) {
			return providers.Invalid
		}
		return providers.Transient // network errors, per-call timeouts
	}
	switch s := re.StatusCode; {
	case s == http.StatusPreconditionFailed, isNotFound(err):
		return providers.Final
	case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests, s >= 500:
		return providers.Transient
	}
	return providers.Invalid
}

// apiError is one failed call, said in one line; it keeps the SDK's error for errors.As. It quotes the status,
// the error code and Azure's message, never a request header (the token is in one).
type apiError struct {
	op  string
	sl  slot
	err error
}

func (e *apiError) Error() string {
	what := e.op
	if e.sl.typ != "" {
		what += " " + string(e.sl.typ) + " record set " + e.sl.rel
	}
	var re *azcore.ResponseError
	if errors.As(e.err, &re) {
		return fmt.Sprintf("%s: HTTP %d %s: %s", what, re.StatusCode, re.ErrorCode, message(re))
	}
	return what + ": " + e.err.Error()
}

func (e *apiError) Unwrap() error { return e.err }

func (r *Router) wrap(op string, sl slot, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &apiError{op: op, sl: sl, err: err}
}

// message is Azure's error message from the response body ({"error":{"message"}} or {"message"}), bounded.
func message(re *azcore.ResponseError) string {
	if re.RawResponse == nil {
		return ""
	}
	b, err := runtime.Payload(re.RawResponse)
	if err != nil {
		return ""
	}
	var body struct {
		Message string `json:"message"`
		Error   *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &body) != nil {
		return ""
	}
	msg := body.Message
	if body.Error != nil {
		msg = body.Error.Message
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}

// explain adds what to do to the permanent failures people meet first: denied access, a refused token, a zone or
// resource group that is not there. Its result keeps err's identity.
func (r *Router) explain(err error) error {
	var ce *azcred.Error
	if errors.As(err, &ce) {
		return &explained{err: err, msg: fmt.Sprintf("dns %q: no usable Azure credentials (settings.credential %q): %v. To fix: "+
			"export AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET of a service principal, or run `az login`, or run "+
			"berth with a managed identity or an AKS workload identity", r.entry, r.credKind, err)}
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	switch {
	case re.StatusCode == http.StatusForbidden:
		return &explained{err: err, msg: fmt.Sprintf("%v. To fix: assign the identity the DNS Zone Contributor role on zone %s "+
			"(`az role assignment create --assignee <id> --role \"DNS Zone Contributor\" --scope "+
			"/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/dnsZones/%s`)", err, r.s.Zone, r.s.SubscriptionID,
			r.s.ResourceGroup, r.s.Zone)}
	case re.StatusCode == http.StatusNotFound && !isNotFound(err):
		return &explained{err: err, msg: fmt.Sprintf("%v. To fix: check settings.subscriptionId, resourceGroup and zone of dns %q "+
			"(the zone must exist: berth manages record sets, not zones)", err, r.entry)}
	}
	return err
}

type explained struct {
	err error
	msg string
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

var (
	_ endpoint.Router = (*Router)(nil)
	_ endpoint.Lister = (*Router)(nil)
)
