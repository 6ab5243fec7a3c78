package gcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Side objects of a workload, beside its templates and group (see doc.go):
//
//	health check    "<group>"          global, HTTP or TCP: the workload's health check, else (public ports without
//	                                   one) a TCP check of the first public TCP port for the load balancer alone
//	firewall        "<group>-hc"       the health checkers' ranges to the checked port
//	firewall        "<group>-public"   0.0.0.0/0 to the public ports
//	address         "<group>"          regional, EXTERNAL: the stable address
//	backend service "<group>-<proto>"  regional, EXTERNAL, protocol TCP or UDP, the group's instance group
//	forwarding rule "<group>-<proto>"  regional, EXTERNAL, the address, the protocol's public ports
//
// Addresses and forwarding rules carry the ownership labels; every one carries the marker in its description
// (spec empty: side objects outlive specs). berth only changes or deletes one whose name and marker are its own.

// healthCheckRanges are the sources of Compute Engine's health check probes: 35.191.0.0/16 and 130.211.0.0/22
// (autohealing and most load balancers) and 209.85.152.0/22 and 209.85.204.0/22 (external passthrough Network
// Load Balancers).
var healthCheckRanges = []string{"35.191.0.0/16", "130.211.0.0/22", "209.85.152.0/22", "209.85.204.0/22"}

// Defaults of a health check whose workload leaves a field unset (Compute Engine's own defaults, sent explicitly).
const (
	defaultIntervalSec = 5
	defaultTimeoutSec  = 5
	defaultUnhealthy   = 2
	healthyThreshold   = 1
)

// Names of side objects.
func healthCheckName(owner providers.Owner, workload string) string {
	return GroupName(owner, workload)
}
func addressName(owner providers.Owner, workload string) string { return GroupName(owner, workload) }
func firewallName(owner providers.Owner, workload, kind string) string {
	return GroupName(owner, workload) + "-" + kind
}
func lbName(owner providers.Owner, workload, protocol string) string {
	return GroupName(owner, workload) + "-" + strings.ToLower(protocol)
}

// sideMarker is the description of d's side objects: the group's marker without a spec or head.
func sideMarker(d providers.Desired) string {
	m := markerOf(d)
	m.Spec, m.Head = "", ""
	return m.String()
}

// ownsSide tells whether a side object's description is berth's for the workload.
func ownsSide(desc string, owner providers.Owner, target, workload string) bool {
	m, ok := parseMarker(desc)
	return ok && m.owns(owner, target, workload)
}

// seconds rounds a duration up to whole seconds, at least min.
func seconds(d time.Duration, def, lo int32) int32 {
	if d <= 0 {
		return def
	}
	return max(lo, int32(math.Ceil(d.Seconds())))
}

// healthCheck maps w's health check (nil for none or a command check) to a Compute Engine health check named name.
func healthCheck(w schema.Workload, name, desc string) *computepb.HealthCheck {
	h := w.Health
	if h == nil || h.Kind() == "command" {
		return nil
	}
	iv := seconds(time.Duration(h.Interval), defaultIntervalSec, 1)
	hc := &computepb.HealthCheck{Name: proto.String(name), Description: proto.String(desc),
		CheckIntervalSec: proto.Int32(iv), TimeoutSec: proto.Int32(min(iv, seconds(time.Duration(h.Timeout), defaultTimeoutSec, 1))),
		HealthyThreshold: proto.Int32(healthyThreshold), UnhealthyThreshold: proto.Int32(defaultUnhealthy)}
	if h.Retries > 0 {
		hc.UnhealthyThreshold = proto.Int32(int32(h.Retries))
	}
	if h.HTTP != nil {
		path := h.HTTP.Path
		if path == "" {
			path = "/"
		}
		hc.Type = proto.String("HTTP")
		hc.HttpHealthCheck = &computepb.HTTPHealthCheck{Port: proto.Int32(int32(h.HTTP.Port)), RequestPath: proto.String(path)}
	} else {
		hc.Type = proto.String("TCP")
		hc.TcpHealthCheck = &computepb.TCPHealthCheck{Port: proto.Int32(int32(h.TCP.Port))}
	}
	return hc
}

// wantHealthCheck is the health check d needs: the workload's, else, with public ports, a TCP check of the first
// public TCP port (a backend service needs one); nil when neither.
func wantHealthCheck(d providers.Desired) *computepb.HealthCheck {
	name, desc := healthCheckName(d.Owner, d.Workload.Name), sideMarker(d)
	if hc := healthCheck(d.Workload, name, desc); hc != nil {
		return hc
	}
	for _, pt := range d.Workload.Ports {
		if pt.Public && !strings.EqualFold(pt.Protocol, "udp") {
			return &computepb.HealthCheck{Name: proto.String(name), Description: proto.String(desc), Type: proto.String("TCP"),
				TcpHealthCheck:   &computepb.TCPHealthCheck{Port: proto.Int32(int32(pt.Port))},
				CheckIntervalSec: proto.Int32(defaultIntervalSec), TimeoutSec: proto.Int32(defaultTimeoutSec),
				HealthyThreshold: proto.Int32(healthyThreshold), UnhealthyThreshold: proto.Int32(defaultUnhealthy)}
		}
	}
	return nil
}

// autohealing is the group's autohealing policy for d: the workload's own health check, its initial delay the
// start period (0 without one); none when the workload declares no health check.
func (p *Provider) autohealing(d providers.Desired) []*computepb.InstanceGroupManagerAutoHealingPolicy {
	if healthCheck(d.Workload, "", "") == nil {
		return nil
	}
	delay := int32(0)
	if sp := time.Duration(d.Workload.Health.StartPeriod); sp > 0 {
		delay = int32(math.Ceil(sp.Seconds()))
	}
	return []*computepb.InstanceGroupManagerAutoHealingPolicy{{
		HealthCheck:     proto.String(fmt.Sprintf("projects/%s/global/healthChecks/%s", p.project, healthCheckName(d.Owner, d.Workload.Name))),
		InitialDelaySec: proto.Int32(delay)}}
}

func sameAutohealing(live, want []*computepb.InstanceGroupManagerAutoHealingPolicy) bool {
	return slices.EqualFunc(live, want, func(a, b *computepb.InstanceGroupManagerAutoHealingPolicy) bool {
		return templateOf(a.GetHealthCheck()) == templateOf(b.GetHealthCheck()) && a.GetInitialDelaySec() == b.GetInitialDelaySec()
	})
}

func sameHealthCheck(live, want *computepb.HealthCheck) bool {
	return live.GetType() == want.GetType() && live.GetCheckIntervalSec() == want.GetCheckIntervalSec() &&
		live.GetTimeoutSec() == want.GetTimeoutSec() && live.GetHealthyThreshold() == want.GetHealthyThreshold() &&
		live.GetUnhealthyThreshold() == want.GetUnhealthyThreshold() &&
		live.GetHttpHealthCheck().GetPort() == want.GetHttpHealthCheck().GetPort() &&
		live.GetHttpHealthCheck().GetRequestPath() == want.GetHttpHealthCheck().GetRequestPath() &&
		live.GetTcpHealthCheck().GetPort() == want.GetTcpHealthCheck().GetPort()
}

// publicByProtocol are d's public ports by protocol ("TCP", "UDP"), in the workload's order.
func publicByProtocol(w schema.Workload) map[string][]int {
	out := map[string][]int{}
	for _, pt := range w.Ports {
		if pt.Public {
			pr := strings.ToUpper(pt.Protocol)
			if pr == "" {
				pr = "TCP"
			}
			if !slices.Contains(out[pr], pt.Port) {
				out[pr] = append(out[pr], pt.Port)
			}
		}
	}
	return out
}

func protocols(m map[string][]int) []string {
	out := make([]string, 0, len(m))
	for pr := range m {
		out = append(out, pr)
	}
	sort.Strings(out)
	return out
}

func portStrings(ports []int) []string {
	out := make([]string, len(ports))
	for i, pt := range ports {
		out[i] = strconv.Itoa(pt)
	}
	return out
}

// maxRulePorts is how many ports a forwarding rule lists; with more it forwards all ports (the firewall rule
// still admits only the public ones).
const maxRulePorts = 5

// firewalls are the firewall rules d needs, by name.
func (p *Provider) firewalls(d providers.Desired, hc *computepb.HealthCheck) map[string]*computepb.Firewall {
	out := map[string]*computepb.Firewall{}
	tag := GroupName(d.Owner, d.Workload.Name)
	if hc != nil {
		port := hc.GetHttpHealthCheck().GetPort()
		if hc.GetType() == "TCP" {
			port = hc.GetTcpHealthCheck().GetPort()
		}
		n := firewallName(d.Owner, d.Workload.Name, "hc")
		out[n] = &computepb.Firewall{Name: proto.String(n), Description: proto.String(sideMarker(d)), Network: proto.String(p.network()),
			Direction: proto.String("INGRESS"), SourceRanges: healthCheckRanges, TargetTags: []string{tag},
			Allowed: []*computepb.Allowed{{IPProtocol: proto.String("tcp"), Ports: []string{strconv.Itoa(int(port))}}}}
	}
	pub := publicByProtocol(d.Workload)
	if len(pub) > 0 {
		n := firewallName(d.Owner, d.Workload.Name, "public")
		fw := &computepb.Firewall{Name: proto.String(n), Description: proto.String(sideMarker(d)), Network: proto.String(p.network()),
			Direction: proto.String("INGRESS"), SourceRanges: []string{"0.0.0.0/0"}, TargetTags: []string{tag}}
		for _, pr := range protocols(pub) {
			fw.Allowed = append(fw.Allowed, &computepb.Allowed{IPProtocol: proto.String(strings.ToLower(pr)), Ports: portStrings(pub[pr])})
		}
		out[n] = fw
	}
	return out
}

func sameFirewall(live, want *computepb.Firewall) bool {
	return sameRef(live.GetNetwork(), want.GetNetwork()) && slices.Equal(live.GetSourceRanges(), want.GetSourceRanges()) &&
		slices.Equal(live.GetTargetTags(), want.GetTargetTags()) && live.GetDirection() == want.GetDirection() &&
		!live.GetDisabled() && slices.EqualFunc(live.GetAllowed(), want.GetAllowed(), func(a, b *computepb.Allowed) bool {
		return a.GetIPProtocol() == b.GetIPProtocol() && slices.Equal(a.GetPorts(), b.GetPorts())
	})
}

// backendService is d's backend service for one protocol.
func (p *Provider) backendService(d providers.Desired, protocol string) *computepb.BackendService {
	group := GroupName(d.Owner, d.Workload.Name)
	return &computepb.BackendService{Name: proto.String(lbName(d.Owner, d.Workload.Name, protocol)), Description: proto.String(sideMarker(d)),
		LoadBalancingScheme: proto.String("EXTERNAL"), Protocol: proto.String(protocol),
		HealthChecks: []string{fmt.Sprintf("projects/%s/global/healthChecks/%s", p.project, healthCheckName(d.Owner, d.Workload.Name))},
		Backends: []*computepb.Backend{{Group: proto.String(fmt.Sprintf("projects/%s/regions/%s/instanceGroups/%s", p.project, p.region, group)),
			BalancingMode: proto.String("CONNECTION")}}}
}

func sameBackendService(live, want *computepb.BackendService) bool {
	return live.GetLoadBalancingScheme() == want.GetLoadBalancingScheme() && live.GetProtocol() == want.GetProtocol() &&
		slices.EqualFunc(live.GetHealthChecks(), want.GetHealthChecks(), func(a, b string) bool { return templateOf(a) == templateOf(b) }) &&
		slices.EqualFunc(live.GetBackends(), want.GetBackends(), func(a, b *computepb.Backend) bool { return templateOf(a.GetGroup()) == templateOf(b.GetGroup()) })
}

// forwardingRule is d's forwarding rule for one protocol's public ports, at address ip.
func (p *Provider) forwardingRule(d providers.Desired, protocol string, ports []int, ip string) *computepb.ForwardingRule {
	fr := &computepb.ForwardingRule{Name: proto.String(lbName(d.Owner, d.Workload.Name, protocol)), Description: proto.String(sideMarker(d)),
		IPAddress: proto.String(ip), IPProtocol: proto.String(protocol), LoadBalancingScheme: proto.String("EXTERNAL"),
		BackendService: proto.String(fmt.Sprintf("projects/%s/regions/%s/backendServices/%s", p.project, p.region, lbName(d.Owner, d.Workload.Name, protocol))),
		Labels:         sideLabels(d)}
	if len(ports) > maxRulePorts {
		fr.AllPorts = proto.Bool(true)
	} else {
		fr.Ports = portStrings(ports)
	}
	return fr
}

// sideLabels are the ownership labels of addresses and forwarding rules.
func sideLabels(d providers.Desired) map[string]string {
	l := labels(d)
	delete(l, LabelKey(providers.LabelSpecHash))
	delete(l, LabelKey(providers.LabelHead))
	delete(l, "container-vm")
	return l
}

// ensureSides creates or repairs the side objects d needs before its group: the health check and the firewall
// rules, and the address when a port is public. It returns the address's IP ("" without public ports).
func (p *Provider) ensureSides(ctx context.Context, log *slog.Logger, d providers.Desired) (string, error) {
	hc := wantHealthCheck(d)
	if hc != nil {
		if err := p.ensureHealthCheck(ctx, log, d, hc); err != nil {
			return "", err
		}
	}
	fws := p.firewalls(d, hc)
	for _, n := range sortedKeys(fws) {
		if err := p.ensureFirewall(ctx, log, d, fws[n]); err != nil {
			return "", err
		}
	}
	if len(publicByProtocol(d.Workload)) == 0 {
		return "", nil
	}
	return p.ensureAddress(ctx, log, d)
}

// ensureLoadBalancer creates or repairs the backend service and forwarding rule of each protocol with public ports,
// once the group (its instance group, the backends) exists.
func (p *Provider) ensureLoadBalancer(ctx context.Context, log *slog.Logger, d providers.Desired, ip string) error {
	pub := publicByProtocol(d.Workload)
	for _, pr := range protocols(pub) {
		if err := p.ensureBackendService(ctx, log, d, p.backendService(d, pr)); err != nil {
			return err
		}
		if err := p.ensureForwardingRule(ctx, log, d, p.forwardingRule(d, pr, pub[pr], ip)); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// mutation runs one mutating call and waits for its operation; alreadyExists and a stale fingerprint come back for
// the caller to re-read. It returns the operation's name: a caller that finds the object still not as asked after
// it salts its next requestId with it (the id was a replay of an older request, deduplicated by GCE).
func (p *Provider) mutation(ctx context.Context, what string, global bool, do func(ctx context.Context) (*compute.Operation, error)) (string, error) {
	var op *compute.Operation
	err := p.call(ctx, what, func(ctx context.Context) (err error) {
		op, err = do(ctx)
		return err
	})
	if err != nil {
		return "", err
	}
	return op.Name(), p.waitOp(ctx, op.Proto(), global)
}

// nonce salts the requestIds of one ensure call of a side object. Side objects have names of their own, so a
// repeat of an insert after a crash is answered alreadyExists and re-read; a deterministic id would instead replay
// the operation that made an object deleted since (by hand), and nothing would be made again.
func nonce() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// notOurs is the error for a side object of berth's name that berth did not make.
func notOurs(kind, name, workload string) error {
	return providers.Permanent(fmt.Errorf("gcp: %s %s exists and is not berth's for %s (its description has no berth marker for it); "+
		"rename or delete it, berth never touches it", kind, name, workload))
}

func (p *Provider) ensureHealthCheck(ctx context.Context, log *slog.Logger, d providers.Desired, want *computepb.HealthCheck) error {
	name := want.GetName()
	salt := nonce()
	for try := 0; try < 3; try++ {
		var live *computepb.HealthCheck
		err := p.call(ctx, "get health check "+name, func(ctx context.Context) (err error) {
			live, err = p.healthChecks.Get(ctx, &computepb.GetHealthCheckRequest{Project: p.project, HealthCheck: name}, noRetry)
			return err
		})
		switch {
		case isCode(err, 404):
			log.Info("gcp: creating health check", "healthCheck", name, "type", want.GetType())
			salt, err = p.mutation(ctx, "insert health check "+name, true, func(ctx context.Context) (*compute.Operation, error) {
				return p.healthChecks.Insert(ctx, &computepb.InsertHealthCheckRequest{Project: p.project, HealthCheckResource: want,
					RequestId: proto.String(requestID(d, "insert-health-check", name, want.String(), salt))}, noRetry)
			})
		case err != nil:
			return err
		case !ownsSide(live.GetDescription(), d.Owner, d.Target, d.Workload.Name):
			return notOurs("health check", name, d.Workload.Name)
		case sameHealthCheck(live, want):
			return nil
		default:
			log.Info("gcp: updating health check", "healthCheck", name)
			// An update (PUT) replaces the check whole: a PATCH from HTTP to TCP would keep the old httpHealthCheck.
			salt, err = p.mutation(ctx, "update health check "+name, true, func(ctx context.Context) (*compute.Operation, error) {
				return p.healthChecks.Update(ctx, &computepb.UpdateHealthCheckRequest{Project: p.project, HealthCheck: name, HealthCheckResource: want,
					RequestId: proto.String(requestID(d, "update-health-check", name, want.String(), strconv.FormatUint(live.GetId(), 10), salt))}, noRetry)
			})
		}
		if err != nil && !isReason(err, "alreadyExists") && !isCode(err, 412) {
			return err
		}
	}
	return fmt.Errorf("gcp: health check %s keeps changing under berth", name)
}

func (p *Provider) ensureFirewall(ctx context.Context, log *slog.Logger, d providers.Desired, want *computepb.Firewall) error {
	name := want.GetName()
	salt := nonce()
	for try := 0; try < 3; try++ {
		var live *computepb.Firewall
		err := p.call(ctx, "get firewall "+name, func(ctx context.Context) (err error) {
			live, err = p.firewallsC.Get(ctx, &computepb.GetFirewallRequest{Project: p.project, Firewall: name}, noRetry)
			return err
		})
		switch {
		case isCode(err, 404):
			log.Info("gcp: creating firewall rule", "firewall", name)
			salt, err = p.mutation(ctx, "insert firewall "+name, true, func(ctx context.Context) (*compute.Operation, error) {
				return p.firewallsC.Insert(ctx, &computepb.InsertFirewallRequest{Project: p.project, FirewallResource: want,
					RequestId: proto.String(requestID(d, "insert-firewall", name, want.String(), salt))}, noRetry)
			})
		case err != nil:
			return err
		case !ownsSide(live.GetDescription(), d.Owner, d.Target, d.Workload.Name):
			return notOurs("firewall rule", name, d.Workload.Name)
		case sameFirewall(live, want):
			return nil
		default:
			log.Info("gcp: updating firewall rule", "firewall", name)
			patch := proto.Clone(want).(*computepb.Firewall)
			patch.Name, patch.Disabled = nil, proto.Bool(false)
			salt, err = p.mutation(ctx, "patch firewall "+name, true, func(ctx context.Context) (*compute.Operation, error) {
				return p.firewallsC.Patch(ctx, &computepb.PatchFirewallRequest{Project: p.project, Firewall: name, FirewallResource: patch,
					RequestId: proto.String(requestID(d, "patch-firewall", name, want.String(), strconv.FormatUint(live.GetId(), 10), salt))}, noRetry)
			})
		}
		if err != nil && !isReason(err, "alreadyExists") && !isCode(err, 412) {
			return err
		}
	}
	return fmt.Errorf("gcp: firewall rule %s keeps changing under berth", name)
}

func (p *Provider) ensureAddress(ctx context.Context, log *slog.Logger, d providers.Desired) (string, error) {
	name := addressName(d.Owner, d.Workload.Name)
	salt := nonce()
	for try := 0; try < 3; try++ {
		var live *computepb.Address
		err := p.call(ctx, "get address "+name, func(ctx context.Context) (err error) {
			live, err = p.addressesC.Get(ctx, &computepb.GetAddressRequest{Project: p.project, Region: p.region, Address: name}, noRetry)
			return err
		})
		switch {
		case isCode(err, 404):
			log.Info("gcp: reserving address", "address", name)
			want := &computepb.Address{Name: proto.String(name), Description: proto.String(sideMarker(d)), AddressType: proto.String("EXTERNAL"),
				Labels: sideLabels(d)}
			salt, err = p.mutation(ctx, "insert address "+name, false, func(ctx context.Context) (*compute.Operation, error) {
				return p.addressesC.Insert(ctx, &computepb.InsertAddressRequest{Project: p.project, Region: p.region, AddressResource: want,
					RequestId: proto.String(requestID(d, "insert-address", name, salt))}, noRetry)
			})
		case err != nil:
			return "", err
		case !ownsSide(live.GetDescription(), d.Owner, d.Target, d.Workload.Name):
			return "", notOurs("address", name, d.Workload.Name)
		case live.GetAddressType() != "EXTERNAL" || live.GetAddress() == "":
			return "", providers.Permanent(fmt.Errorf("gcp: address %s is %s, not a reserved external address; delete it and berth reserves another",
				name, live.GetAddressType()))
		default:
			return live.GetAddress(), nil
		}
		if err != nil && !isReason(err, "alreadyExists") {
			return "", err
		}
	}
	return "", fmt.Errorf("gcp: address %s did not appear after insert", name)
}

func (p *Provider) ensureBackendService(ctx context.Context, log *slog.Logger, d providers.Desired, want *computepb.BackendService) error {
	name := want.GetName()
	salt := nonce()
	for try := 0; try < 3; try++ {
		var live *computepb.BackendService
		err := p.call(ctx, "get backend service "+name, func(ctx context.Context) (err error) {
			live, err = p.backends.Get(ctx, &computepb.GetRegionBackendServiceRequest{Project: p.project, Region: p.region, BackendService: name}, noRetry)
			return err
		})
		switch {
		case isCode(err, 404):
			log.Info("gcp: creating backend service", "backendService", name)
			salt, err = p.mutation(ctx, "insert backend service "+name, false, func(ctx context.Context) (*compute.Operation, error) {
				return p.backends.Insert(ctx, &computepb.InsertRegionBackendServiceRequest{Project: p.project, Region: p.region, BackendServiceResource: want,
					RequestId: proto.String(requestID(d, "insert-backend-service", name, want.String(), salt))}, noRetry)
			})
		case err != nil:
			return err
		case !ownsSide(live.GetDescription(), d.Owner, d.Target, d.Workload.Name):
			return notOurs("backend service", name, d.Workload.Name)
		case sameBackendService(live, want):
			return nil
		default:
			log.Info("gcp: updating backend service", "backendService", name)
			patch := proto.Clone(want).(*computepb.BackendService)
			patch.Name, patch.Fingerprint = nil, live.Fingerprint
			salt, err = p.mutation(ctx, "patch backend service "+name, false, func(ctx context.Context) (*compute.Operation, error) {
				return p.backends.Patch(ctx, &computepb.PatchRegionBackendServiceRequest{Project: p.project, Region: p.region, BackendService: name,
					BackendServiceResource: patch, RequestId: proto.String(requestID(d, "patch-backend-service", name, want.String(), live.GetFingerprint(), salt))}, noRetry)
			})
		}
		if err != nil && !isReason(err, "alreadyExists") && !isCode(err, 412) {
			return err
		}
	}
	return fmt.Errorf("gcp: backend service %s keeps changing under berth", name)
}

// ensureForwardingRule creates the rule, or makes it again when it differs (forwarding rules cannot change their
// address, protocol or ports in place).
func (p *Provider) ensureForwardingRule(ctx context.Context, log *slog.Logger, d providers.Desired, want *computepb.ForwardingRule) error {
	name := want.GetName()
	salt := nonce()
	for try := 0; try < 3; try++ {
		var live *computepb.ForwardingRule
		err := p.call(ctx, "get forwarding rule "+name, func(ctx context.Context) (err error) {
			live, err = p.rules.Get(ctx, &computepb.GetForwardingRuleRequest{Project: p.project, Region: p.region, ForwardingRule: name}, noRetry)
			return err
		})
		switch {
		case isCode(err, 404):
			log.Info("gcp: creating forwarding rule", "forwardingRule", name, "address", want.GetIPAddress())
			salt, err = p.mutation(ctx, "insert forwarding rule "+name, false, func(ctx context.Context) (*compute.Operation, error) {
				return p.rules.Insert(ctx, &computepb.InsertForwardingRuleRequest{Project: p.project, Region: p.region, ForwardingRuleResource: want,
					RequestId: proto.String(requestID(d, "insert-forwarding-rule", name, want.String(), salt))}, noRetry)
			})
		case err != nil:
			return err
		case !ownsSide(live.GetDescription(), d.Owner, d.Target, d.Workload.Name):
			return notOurs("forwarding rule", name, d.Workload.Name)
		case live.GetIPAddress() == want.GetIPAddress() && live.GetIPProtocol() == want.GetIPProtocol() &&
			slices.Equal(live.GetPorts(), want.GetPorts()) && live.GetAllPorts() == want.GetAllPorts() &&
			templateOf(live.GetBackendService()) == templateOf(want.GetBackendService()):
			return nil
		default:
			log.Info("gcp: replacing forwarding rule", "forwardingRule", name)
			salt, err = p.mutation(ctx, "delete forwarding rule "+name, false, func(ctx context.Context) (*compute.Operation, error) {
				return p.rules.Delete(ctx, &computepb.DeleteForwardingRuleRequest{Project: p.project, Region: p.region, ForwardingRule: name,
					RequestId: proto.String(requestID(d, "delete-forwarding-rule", name, strconv.FormatUint(live.GetId(), 10), salt))}, noRetry)
			})
			if isCode(err, 404) {
				err = nil
			}
		}
		if err != nil && !isReason(err, "alreadyExists") {
			return err
		}
	}
	return fmt.Errorf("gcp: forwarding rule %s keeps changing under berth", name)
}

// deleteSides deletes the workload's side objects that keep does not want, in the order Compute Engine allows:
// forwarding rules, backend services, then (once no group uses it: callers delete or patch the group first) the
// health check, the firewall rules, the address last. Only objects whose name and marker are berth's are touched;
// what is gone is no error.
func (p *Provider) deleteSides(ctx context.Context, d providers.Desired, keep func(kind, name string) bool) error {
	w := d.Workload.Name
	del := func(kind, name string, global bool, get func(ctx context.Context) (string, uint64, error),
		do func(ctx context.Context, id string) (*compute.Operation, error)) error {
		if keep != nil && keep(kind, name) {
			return nil
		}
		var desc string
		var id uint64
		err := p.call(ctx, "get "+kind+" "+name, func(ctx context.Context) (err error) {
			desc, id, err = get(ctx)
			return err
		})
		switch {
		case isCode(err, 404):
			return nil
		case err != nil:
			return err
		case !ownsSide(desc, d.Owner, d.Target, w):
			return nil
		}
		p.log.Info("gcp: deleting "+kind, "env", d.Owner.Environment, "workload", w, "name", name)
		_, err = p.mutation(ctx, "delete "+kind+" "+name, global, func(ctx context.Context) (*compute.Operation, error) {
			return do(ctx, requestID(d, "delete-"+strings.ReplaceAll(kind, " ", "-"), name, strconv.FormatUint(id, 10)))
		})
		if isCode(err, 404) {
			return nil
		}
		return err
	}
	var errs []error
	for _, pr := range []string{"TCP", "UDP"} {
		n := lbName(d.Owner, w, pr)
		errs = append(errs, del("forwarding rule", n, false, func(ctx context.Context) (string, uint64, error) {
			r, err := p.rules.Get(ctx, &computepb.GetForwardingRuleRequest{Project: p.project, Region: p.region, ForwardingRule: n}, noRetry)
			return r.GetDescription(), r.GetId(), err
		}, func(ctx context.Context, id string) (*compute.Operation, error) {
			return p.rules.Delete(ctx, &computepb.DeleteForwardingRuleRequest{Project: p.project, Region: p.region, ForwardingRule: n, RequestId: &id}, noRetry)
		}))
	}
	for _, pr := range []string{"TCP", "UDP"} {
		n := lbName(d.Owner, w, pr)
		errs = append(errs, del("backend service", n, false, func(ctx context.Context) (string, uint64, error) {
			r, err := p.backends.Get(ctx, &computepb.GetRegionBackendServiceRequest{Project: p.project, Region: p.region, BackendService: n}, noRetry)
			return r.GetDescription(), r.GetId(), err
		}, func(ctx context.Context, id string) (*compute.Operation, error) {
			return p.backends.Delete(ctx, &computepb.DeleteRegionBackendServiceRequest{Project: p.project, Region: p.region, BackendService: n, RequestId: &id}, noRetry)
		}))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	hn := healthCheckName(d.Owner, w)
	errs = append(errs, del("health check", hn, true, func(ctx context.Context) (string, uint64, error) {
		r, err := p.healthChecks.Get(ctx, &computepb.GetHealthCheckRequest{Project: p.project, HealthCheck: hn}, noRetry)
		return r.GetDescription(), r.GetId(), err
	}, func(ctx context.Context, id string) (*compute.Operation, error) {
		return p.healthChecks.Delete(ctx, &computepb.DeleteHealthCheckRequest{Project: p.project, HealthCheck: hn, RequestId: &id}, noRetry)
	}))
	for _, kind := range []string{"hc", "public"} {
		n := firewallName(d.Owner, w, kind)
		errs = append(errs, del("firewall", n, true, func(ctx context.Context) (string, uint64, error) {
			r, err := p.firewallsC.Get(ctx, &computepb.GetFirewallRequest{Project: p.project, Firewall: n}, noRetry)
			return r.GetDescription(), r.GetId(), err
		}, func(ctx context.Context, id string) (*compute.Operation, error) {
			return p.firewallsC.Delete(ctx, &computepb.DeleteFirewallRequest{Project: p.project, Firewall: n, RequestId: &id}, noRetry)
		}))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	an := addressName(d.Owner, w)
	return del("address", an, false, func(ctx context.Context) (string, uint64, error) {
		r, err := p.addressesC.Get(ctx, &computepb.GetAddressRequest{Project: p.project, Region: p.region, Address: an}, noRetry)
		return r.GetDescription(), r.GetId(), err
	}, func(ctx context.Context, id string) (*compute.Operation, error) {
		return p.addressesC.Delete(ctx, &computepb.DeleteAddressRequest{Project: p.project, Region: p.region, Address: an, RequestId: &id}, noRetry)
	})
}

// wanted tells which side objects d needs, for deleteSides after an Apply.
func (p *Provider) wanted(d providers.Desired) func(kind, name string) bool {
	names := map[string]bool{}
	hc := wantHealthCheck(d)
	if hc != nil {
		names["health check/"+hc.GetName()] = true
	}
	for n := range p.firewalls(d, hc) {
		names["firewall/"+n] = true
	}
	pub := publicByProtocol(d.Workload)
	if len(pub) > 0 {
		names["address/"+addressName(d.Owner, d.Workload.Name)] = true
	}
	for pr := range pub {
		names["forwarding rule/"+lbName(d.Owner, d.Workload.Name, pr)] = true
		names["backend service/"+lbName(d.Owner, d.Workload.Name, pr)] = true
	}
	return func(kind, name string) bool { return names[kind+"/"+name] }
}

// sides are the side objects of owner's workloads, read once per List pass when a group needs them: one list per
// collection, filtered by the owner's name prefix.
type sides struct {
	p      *Provider
	owner  providers.Owner
	loaded bool
	hcs    map[string]*computepb.HealthCheck
	fws    map[string]*computepb.Firewall
	addrs  map[string]*computepb.Address
	bes    map[string]*computepb.BackendService
	rules  map[string]*computepb.ForwardingRule
}

func (s *sides) load(ctx context.Context) error {
	if s.loaded {
		return nil
	}
	p := s.p
	filter := proto.String(fmt.Sprintf("name eq %s.*", groupPrefix(s.owner)))
	s.hcs, s.fws, s.addrs = map[string]*computepb.HealthCheck{}, map[string]*computepb.Firewall{}, map[string]*computepb.Address{}
	s.bes, s.rules = map[string]*computepb.BackendService{}, map[string]*computepb.ForwardingRule{}
	err := errors.Join(
		listAll(ctx, p, "list health checks", func(ctx context.Context) func() (*computepb.HealthCheck, error) {
			return p.healthChecks.List(ctx, &computepb.ListHealthChecksRequest{Project: p.project, Filter: filter}, noRetry).Next
		}, s.hcs),
		listAll(ctx, p, "list firewalls", func(ctx context.Context) func() (*computepb.Firewall, error) {
			return p.firewallsC.List(ctx, &computepb.ListFirewallsRequest{Project: p.project, Filter: filter}, noRetry).Next
		}, s.fws),
		listAll(ctx, p, "list addresses", func(ctx context.Context) func() (*computepb.Address, error) {
			return p.addressesC.List(ctx, &computepb.ListAddressesRequest{Project: p.project, Region: p.region, Filter: filter}, noRetry).Next
		}, s.addrs),
		listAll(ctx, p, "list backend services", func(ctx context.Context) func() (*computepb.BackendService, error) {
			return p.backends.List(ctx, &computepb.ListRegionBackendServicesRequest{Project: p.project, Region: p.region, Filter: filter}, noRetry).Next
		}, s.bes),
		listAll(ctx, p, "list forwarding rules", func(ctx context.Context) func() (*computepb.ForwardingRule, error) {
			return p.rules.List(ctx, &computepb.ListForwardingRulesRequest{Project: p.project, Region: p.region, Filter: filter}, noRetry).Next
		}, s.rules),
	)
	if err != nil {
		return err
	}
	s.loaded = true
	return nil
}

type named interface {
	GetName() string
	GetDescription() string
}

func listAll[T named](ctx context.Context, p *Provider, what string, it func(ctx context.Context) func() (T, error), into map[string]T) error {
	return p.call(ctx, what, func(ctx context.Context) error {
		clear(into)
		next := it(ctx)
		for {
			v, err := next()
			if errors.Is(err, iterator.Done) {
				return nil
			}
			if err != nil {
				return err
			}
			into[v.GetName()] = v
		}
	})
}

// readSides completes o from the workload's side objects: the health check (from the group's autohealing policy),
// which ports are public (a forwarding rule of their protocol lists them; without one, the public firewall rule),
// the endpoints (the address's IP and each public port) and Missing (a side object the read-back spec needs that
// is gone, or not berth's).
func (s *sides) readSides(ctx context.Context, g *computepb.InstanceGroupManager, o *providers.Observed, public bool) error {
	ahs := g.GetAutoHealingPolicies()
	if !public && len(ahs) == 0 {
		return nil
	}
	if err := s.load(ctx); err != nil {
		return err
	}
	owner, w := s.owner, o.Workload
	mine := func(desc string) bool { return ownsSide(desc, owner, o.Target, w) }
	missing := func(what string) { o.Missing = append(o.Missing, what) }
	var hcWant bool
	if len(ahs) > 0 {
		hcWant = true
		hc := s.hcs[templateOf(ahs[0].GetHealthCheck())]
		if hc != nil && mine(hc.GetDescription()) {
			o.Spec.Health = readHealth(hc, ahs[0].GetInitialDelaySec())
		}
	}
	if public {
		byProto := map[string]map[int]bool{}
		for _, pr := range []string{"TCP", "UDP"} {
			n := lbName(owner, w, pr)
			if r := s.rules[n]; r != nil && mine(r.GetDescription()) {
				byProto[pr] = map[int]bool{}
				for _, pt := range r.GetPorts() {
					if v, err := strconv.Atoi(pt); err == nil {
						byProto[pr][v] = true
					}
				}
				if r.GetAllPorts() {
					byProto[pr][-1] = true
				}
			}
		}
		if fw := s.fws[firewallName(owner, w, "public")]; fw != nil && mine(fw.GetDescription()) {
			for _, a := range fw.GetAllowed() {
				pr := strings.ToUpper(a.GetIPProtocol())
				if byProto[pr] != nil && !byProto[pr][-1] {
					continue // the forwarding rule says
				}
				if byProto[pr] == nil {
					byProto[pr] = map[int]bool{}
				}
				for _, pt := range a.GetPorts() {
					if v, err := strconv.Atoi(pt); err == nil {
						byProto[pr][v] = true
					}
				}
			}
		} else {
			missing("firewall " + firewallName(owner, w, "public"))
		}
		anyPublic := false
		for i, pt := range o.Spec.Ports {
			on := byProto[strings.ToUpper(pt.Protocol)]
			pt.Public = on != nil && on[pt.Port]
			pt.HostPort = 0
			if pt.Public {
				pt.HostPort, anyPublic = pt.Port, true
			}
			o.Spec.Ports[i] = pt
		}
		if anyPublic {
			hcWant = true
			for _, pr := range protocols(publicByProtocol(o.Spec)) {
				n := lbName(owner, w, pr)
				if r := s.rules[n]; r == nil || !mine(r.GetDescription()) {
					missing("forwarding rule " + n)
				}
				if b := s.bes[n]; b == nil || !mine(b.GetDescription()) {
					missing("backend service " + n)
				}
			}
			a := s.addrs[addressName(owner, w)]
			if a == nil || !mine(a.GetDescription()) || a.GetAddress() == "" {
				missing("address " + addressName(owner, w))
			} else {
				for _, pt := range o.Spec.Ports {
					if pt.Public {
						o.Endpoints = append(o.Endpoints, providers.Endpoint{Port: pt.Port, Address: net.JoinHostPort(a.GetAddress(), strconv.Itoa(pt.Port))})
					}
				}
			}
		}
	}
	if hcWant {
		n := healthCheckName(owner, w)
		if hc := s.hcs[n]; hc == nil || !mine(hc.GetDescription()) {
			missing("health check " + n)
		}
		if fw := s.fws[firewallName(owner, w, "hc")]; fw == nil || !mine(fw.GetDescription()) {
			missing("firewall " + firewallName(owner, w, "hc"))
		}
	}
	return nil
}

// readHealth is a workload health check as a Compute Engine health check and the autohealing delay hold it.
func readHealth(hc *computepb.HealthCheck, delay int32) *schema.HealthCheck {
	h := &schema.HealthCheck{Interval: schema.Duration(time.Duration(hc.GetCheckIntervalSec()) * time.Second),
		Timeout: schema.Duration(time.Duration(hc.GetTimeoutSec()) * time.Second), Retries: int(hc.GetUnhealthyThreshold()),
		StartPeriod: schema.Duration(time.Duration(delay) * time.Second)}
	switch hc.GetType() {
	case "HTTP":
		h.HTTP = &schema.HTTPCheck{Path: hc.GetHttpHealthCheck().GetRequestPath(), Port: int(hc.GetHttpHealthCheck().GetPort())}
	case "TCP":
		h.TCP = &schema.TCPCheck{Port: int(hc.GetTcpHealthCheck().GetPort())}
	default:
		return nil
	}
	return h
}

// normalHealth is w's health check in the form readHealth gives back.
func normalHealth(w schema.Workload) *schema.HealthCheck {
	hc := healthCheck(w, "", "")
	if hc == nil {
		return nil
	}
	delay := int32(0)
	if sp := time.Duration(w.Health.StartPeriod); sp > 0 {
		delay = int32(math.Ceil(sp.Seconds()))
	}
	return readHealth(hc, delay)
}

// instanceHealth is a managed instance's health as a replica's: "" when the group has no autohealing policy.
func instanceHealth(mi *computepb.ManagedInstance, autohealing bool) string {
	if !autohealing {
		return ""
	}
	for _, h := range mi.GetInstanceHealth() {
		switch h.GetDetailedHealthState() {
		case "HEALTHY":
			return "healthy"
		case "UNHEALTHY", "TIMEOUT":
			return "unhealthy"
		}
	}
	return "starting"
}

// clearAutohealing removes the group's autohealing policy (the workload no longer declares a health check): a
// JSON merge PATCH of autoHealingPolicies: [], sent over the provider's own authenticated HTTP client because the
// SDK's PATCH leaves an empty list out of the body.
func (p *Provider) clearAutohealing(ctx context.Context, d providers.Desired, g *computepb.InstanceGroupManager) error {
	name := g.GetName()
	u := fmt.Sprintf("%s/compute/v1/projects/%s/regions/%s/instanceGroupManagers/%s?requestId=%s", strings.TrimSuffix(p.rawEndpoint, "/"),
		url.PathEscape(p.project), url.PathEscape(p.region), url.PathEscape(name), requestID(d, "clear-autohealing", g.GetFingerprint()))
	body, _ := json.Marshal(map[string]any{"autoHealingPolicies": []any{}, "fingerprint": g.GetFingerprint()})
	op := &computepb.Operation{}
	err := p.call(ctx, "clear the autohealing policy of "+name, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPatch, u, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := p.raw.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := googleapi.CheckResponse(resp); err != nil {
			return err
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return err
		}
		return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, op)
	})
	if err != nil {
		return err
	}
	return p.waitOp(ctx, op, false)
}
