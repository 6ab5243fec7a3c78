package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Tags of berth's ELBv2 objects beside the ownership tags.
const (
	// LabelPort is the tag of a target group and a listener naming the workload's port it serves ("8080/tcp").
	LabelPort = "berth.dev/port"
	// LabelHealthCheck is the tag of a target group telling whether its health check is the workload's own
	// (health.http or health.tcp: "spec") or berth's TCP check of the traffic port ("default"), so that List
	// reads a health check back only where the workload declared one.
	LabelHealthCheck = "berth.dev/health-check"
)

// ELBv2's limits and berth's choices for target group health checks, in seconds (thresholds: counts).
const (
	maxELBNameLen                  = 32
	elbMinInterval, elbMaxInterval = 5, 300
	elbMinTimeout, elbMaxTimeout   = 2, 120
	elbMinThreshold, elbMaxThresh  = 2, 10
	// The check of a target group whose workload declares no HTTP or TCP check: TCP on the traffic port.
	defaultELBInterval, defaultELBTimeout, defaultELBThreshold = 10, 10, 3
	// httpMatcher is berth's meaning of an HTTP check: a 2xx or 3xx answer.
	httpMatcher = "200-399"
)

// elbHash is the hash suffix of berth's ELBv2 names: the workload's identity (and the port's, for a target
// group), so two workloads whose names cut alike never share a name.
func elbHash(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])
}

// elbSafe maps a name to ELBv2's alphabet (letters, digits, hyphens; no hyphen first or last, none doubled) and
// cuts it to n characters.
func elbSafe(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
				b.WriteByte('-')
			}
		}
	}
	out := b.String()
	if len(out) > n {
		out = out[:n]
	}
	return strings.Trim(out, "-")
}

// lbName is the name of the network load balancer berth makes for a workload: b-<workload, cut>-<hash of the
// identity>, at most 32 characters. The identity is in the tags; the name only has to be deterministic and
// collision-checked (an existing load balancer of that name that is not the workload's is an error, never used).
func lbName(k wkey) string {
	h := elbHash("lb", k.Instance, k.Environment, k.Target, k.Workload)[:10]
	w := elbSafe(k.Workload, maxELBNameLen-len("b--")-len(h))
	if w == "" {
		return "b-" + h
	}
	return "b-" + w + "-" + h
}

// tgName is the name of the target group of one port of a workload: b-<workload, cut>-<port><t|u>-<hash>.
func tgName(k wkey, port int, protocol string) string {
	h := elbHash("tg", k.Instance, k.Environment, k.Target, k.Workload, strconv.Itoa(port), protocol)[:8]
	p := strconv.Itoa(port) + strings.ToLower(protocol[:1])
	w := elbSafe(k.Workload, maxELBNameLen-len("b---")-len(p)-len(h))
	if w == "" {
		return "b-" + p + "-" + h
	}
	return "b-" + w + "-" + p + "-" + h
}

// elbHealth is the health check of a workload's target groups: the workload's HTTP or TCP check (interval,
// timeout and retries in ELBv2's bounds: a value under ELBv2's minimum is raised to it, one above its maximum is
// a Validate problem), else berth's TCP check of the traffic port. spec tells which.
type elbHealth struct {
	protocol, path, port                            string
	interval, timeout, healthyCount, unhealthyCount int32
	spec                                            bool
}

func secsUp(d schema.Duration) int { return int((d.D() + 999_999_999) / 1_000_000_000) }

func healthOf(h *schema.HealthCheck) elbHealth {
	switch h.Kind() {
	case "http", "tcp":
		retries := int32(clamp(h.Retries, elbMinThreshold, elbMaxThresh))
		e := elbHealth{protocol: "TCP", spec: true,
			interval: int32(clamp(secsUp(h.Interval), elbMinInterval, elbMaxInterval)),
			timeout:  int32(clamp(secsUp(h.Timeout), elbMinTimeout, elbMaxTimeout)), healthyCount: retries, unhealthyCount: retries}
		if h.HTTP != nil {
			e.protocol, e.path, e.port = "HTTP", h.HTTP.Path, strconv.Itoa(h.HTTP.Port)
			if e.path == "" {
				e.path = "/"
			}
		} else {
			e.port = strconv.Itoa(h.TCP.Port)
		}
		return e
	}
	return elbHealth{protocol: "TCP", port: "traffic-port", interval: defaultELBInterval, timeout: defaultELBTimeout,
		healthyCount: defaultELBThreshold, unhealthyCount: defaultELBThreshold}
}

// readHealth is the elbHealth a described target group has.
func readHealth(tg elbtypes.TargetGroup, tags map[string]string) elbHealth {
	return elbHealth{protocol: string(tg.HealthCheckProtocol), path: aws.ToString(tg.HealthCheckPath),
		port: aws.ToString(tg.HealthCheckPort), interval: aws.ToInt32(tg.HealthCheckIntervalSeconds),
		timeout: aws.ToInt32(tg.HealthCheckTimeoutSeconds), healthyCount: aws.ToInt32(tg.HealthyThresholdCount),
		unhealthyCount: aws.ToInt32(tg.UnhealthyThresholdCount), spec: tags[LabelHealthCheck] == "spec"}
}

// check is the schema form of a target group's health check that is the workload's own (nil otherwise);
// startPeriod is the service's healthCheckGracePeriodSeconds.
func (e elbHealth) check(startPeriod int32) *schema.HealthCheck {
	if !e.spec {
		return nil
	}
	port, _ := strconv.Atoi(e.port)
	h := &schema.HealthCheck{Interval: schema.Duration(int64(e.interval) * 1e9), Timeout: schema.Duration(int64(e.timeout) * 1e9),
		Retries: int(e.unhealthyCount), StartPeriod: schema.Duration(int64(startPeriod) * 1e9)}
	if e.protocol == "HTTP" || e.protocol == "HTTPS" {
		h.HTTP = &schema.HTTPCheck{Path: e.path, Port: port}
	} else {
		h.TCP = &schema.TCPCheck{Port: port}
	}
	return h
}

// healthProblems are the problems of a workload's HTTP or TCP check on ECS with ELBv2: a check of a port that is
// not public (a target group checks only behind a listener, so the checked port must be a public port of the
// workload), values above ELBv2's maxima, a timeout longer than the interval.
func healthProblems(w schema.Workload) []providers.Problem {
	h := w.Health
	kind := h.Kind()
	var out []providers.Problem
	if kind != "http" && kind != "tcp" {
		// A UDP public port needs a check ELBv2 can make: TCP or HTTP (it cannot check UDP).
		for i, pt := range w.Ports {
			if pt.Public && strings.EqualFold(pt.Protocol, "udp") {
				out = append(out, providers.Problem{Field: fmt.Sprintf("ports[%d].protocol", i),
					Message: "ELBv2 checks the targets of a UDP port over TCP or HTTP: declare health.tcp or health.http on a TCP port the " +
						"container answers on"})
			}
		}
		return out
	}
	port := 0
	if h.HTTP != nil {
		port = h.HTTP.Port
	} else {
		port = h.TCP.Port
	}
	public := false
	for _, pt := range w.Ports {
		if pt.Public && pt.Port == port && !strings.EqualFold(pt.Protocol, "udp") {
			public = true
		}
	}
	if !public {
		out = append(out, providers.Problem{Field: "health." + kind + ".port",
			Message: fmt.Sprintf("ECS runs HTTP and TCP checks through an ELBv2 target group, which checks only behind a listener: "+
				"port %d must be a public TCP port of the workload (or use health.command, which ECS runs inside the container)", port)})
	}
	for _, c := range []struct {
		field, unit string
		v, hi       int
	}{
		{"health.interval", "seconds", secsUp(h.Interval), elbMaxInterval},
		{"health.timeout", "seconds", secsUp(h.Timeout), elbMaxTimeout},
		{"health.retries", "retries", h.Retries, elbMaxThresh},
	} {
		if c.v > c.hi {
			out = append(out, providers.Problem{Field: c.field,
				Message: fmt.Sprintf("ELBv2 target group health checks accept at most %d %s; %d asked", c.hi, c.unit, c.v)})
		}
	}
	if e := healthOf(h); e.timeout > e.interval {
		out = append(out, providers.Problem{Field: "health.timeout",
			Message: fmt.Sprintf("ELBv2 needs a health check timeout no longer than its interval (%d s); %d s asked", e.interval, e.timeout)})
	}
	return out
}

// elbPort is one public port of a workload as ELBv2 serves it.
type elbPort struct {
	port     int
	protocol string // TCP or UDP
}

func elbPorts(w schema.Workload) []elbPort {
	var out []elbPort
	for _, pt := range w.Ports {
		if !pt.Public {
			continue
		}
		proto := "TCP"
		if strings.EqualFold(pt.Protocol, "udp") {
			proto = "UDP"
		}
		out = append(out, elbPort{pt.Port, proto})
	}
	return out
}

func (e elbPort) label() string { return strconv.Itoa(e.port) + "/" + strings.ToLower(e.protocol) }

// lbState is what berth found or made of a workload's load balancing.
type lbState struct {
	arn, name, dns string
	owned          bool // berth's own load balancer (deleted with the workload)
	// groups are the workload's target groups, by port label; listeners its listeners by port.
	groups    map[string]elbtypes.TargetGroup
	listeners map[int32]elbtypes.Listener
	tags      map[string]map[string]string // of the groups, by ARN
	missing   []string
}

// health is the workload's own health check as the target groups hold it (nil when they check berth's default).
func (st *lbState) health(startPeriod int32) *schema.HealthCheck {
	if st == nil {
		return nil
	}
	ports := make([]string, 0, len(st.groups))
	for port := range st.groups {
		ports = append(ports, port)
	}
	sort.Strings(ports)
	for _, port := range ports {
		tg := st.groups[port]
		if h := readHealth(tg, st.tags[aws.ToString(tg.TargetGroupArn)]).check(startPeriod); h != nil {
			return h
		}
	}
	return nil
}

// callELB is call for an ELBv2 operation: the same timeout, retries and classification, and a denied access
// explained with the ELBv2 permissions berth needs.
func (p *Provider) callELB(ctx context.Context, op string, f func(ctx context.Context) error) error {
	r := providers.Retry{Base: p.RetryBase, Max: p.RetryMax, Attempts: p.RetryAttempts, Timeout: CallTimeout,
		Classify: classify, Logger: p.log}
	err := r.Do(ctx, "elasticloadbalancing "+op, f)
	if !errors.Is(err, providers.ErrPermanent) {
		return err
	}
	if e := p.explainELB(err); e != err {
		return providers.Permanent(e)
	}
	return err
}

func elbTags(k wkey, extra ...elbtypes.Tag) []elbtypes.Tag {
	var out []elbtypes.Tag
	for _, t := range ownerTags(k) {
		out = append(out, elbtypes.Tag{Key: t.Key, Value: t.Value})
	}
	return append(out, extra...)
}

func elbTagMap(tags []elbtypes.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func isCode(err error, codes ...string) bool {
	var ae interface{ ErrorCode() string }
	if errors.As(err, &ae) {
		for _, c := range codes {
			if ae.ErrorCode() == c {
				return true
			}
		}
	}
	return false
}

// tagsOf reads the tags of ELBv2 resources (20 at a time).
func (p *Provider) tagsOf(ctx context.Context, arns []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for start := 0; start < len(arns); start += 20 {
		batch := arns[start:min(start+20, len(arns))]
		var res *elb.DescribeTagsOutput
		if err := p.callELB(ctx, "DescribeTags", func(ctx context.Context) error {
			var err error
			res, err = p.elb.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: batch})
			return err
		}); err != nil {
			return nil, err
		}
		for _, d := range res.TagDescriptions {
			out[aws.ToString(d.ResourceArn)] = elbTagMap(d.Tags)
		}
	}
	return out, nil
}

// findLoadBalancer describes the load balancer named (or ARN) ref; nil when there is none.
func (p *Provider) findLoadBalancer(ctx context.Context, ref string) (*elbtypes.LoadBalancer, error) {
	in := &elb.DescribeLoadBalancersInput{Names: []string{ref}}
	if strings.HasPrefix(ref, "arn:") {
		in = &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{ref}}
	}
	return describeFirst(ctx, p, "DescribeLoadBalancers", "LoadBalancerNotFound",
		func(ctx context.Context) ([]elbtypes.LoadBalancer, error) {
			out, err := p.elb.DescribeLoadBalancers(ctx, in)
			if err != nil {
				return nil, err
			}
			return out.LoadBalancers, nil
		})
}

// findTargetGroup describes the target group in names; nil when there is none.
func (p *Provider) findTargetGroup(ctx context.Context, in *elb.DescribeTargetGroupsInput) (*elbtypes.TargetGroup, error) {
	return describeFirst(ctx, p, "DescribeTargetGroups", "TargetGroupNotFound",
		func(ctx context.Context) ([]elbtypes.TargetGroup, error) {
			out, err := p.elb.DescribeTargetGroups(ctx, in)
			if err != nil {
				return nil, err
			}
			return out.TargetGroups, nil
		})
}

// describeFirst runs one ELBv2 describe call (retried as every call) and gives its first result: nil when there is
// none or ELBv2 answers notFound.
func describeFirst[T any](ctx context.Context, p *Provider, op, notFound string, describe func(context.Context) ([]T, error)) (*T, error) {
	var items []T
	err := p.callELB(ctx, op, func(ctx context.Context) error {
		var err error
		items, err = describe(ctx)
		return err
	})
	if isCode(err, notFound) {
		return nil, nil
	}
	if err != nil || len(items) == 0 {
		return nil, err
	}
	return &items[0], nil
}

// listenersOf lists a load balancer's listeners, every page.
func (p *Provider) listenersOf(ctx context.Context, lbArn string) ([]elbtypes.Listener, error) {
	var all []elbtypes.Listener
	var marker *string
	for {
		var out *elb.DescribeListenersOutput
		if err := p.callELB(ctx, "DescribeListeners", func(ctx context.Context) error {
			var err error
			out, err = p.elb.DescribeListeners(ctx, &elb.DescribeListenersInput{LoadBalancerArn: aws.String(lbArn), Marker: marker})
			return err
		}); err != nil {
			return nil, err
		}
		all = append(all, out.Listeners...)
		if marker = out.NextMarker; aws.ToString(marker) == "" {
			return all, nil
		}
	}
}

// vpcID is the VPC of the target's subnets: settings.vpcId, else EC2's DescribeSubnets of the first subnet (once).
func (p *Provider) vpcID(ctx context.Context) (string, error) {
	p.mu.Lock()
	v := p.vpc
	p.mu.Unlock()
	if v != "" {
		return v, nil
	}
	if p.set.vpcID != "" {
		return p.set.vpcID, nil
	}
	if p.ec2 == nil {
		return "", providers.Permanent(fmt.Errorf("target %q: settings.vpcId is needed for the target groups of public ports (no EC2 client to read the subnets' VPC)", p.target))
	}
	var out *ec2.DescribeSubnetsOutput
	if err := p.callEC2(ctx, "DescribeSubnets", func(ctx context.Context) error {
		var err error
		out, err = p.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: p.set.subnets[:1]})
		return err
	}); err != nil {
		return "", fmt.Errorf("the VPC of subnet %s (ec2:DescribeSubnets; or set settings.vpcId): %w", p.set.subnets[0], err)
	}
	if len(out.Subnets) == 0 || aws.ToString(out.Subnets[0].VpcId) == "" {
		return "", providers.Permanent(fmt.Errorf("subnet %s: EC2 tells no VPC; set settings.vpcId", p.set.subnets[0]))
	}
	v = aws.ToString(out.Subnets[0].VpcId)
	p.mu.Lock()
	p.vpc = v
	p.mu.Unlock()
	return v, nil
}

// ensureLoadBalancing makes the ELBv2 side of a workload's public ports as the spec asks: the load balancer (the
// target's, or berth's own network load balancer for the workload), a target group per public port (target type
// ip, the workload's health check) and a listener per public port forwarding to it. It returns the service's
// loadBalancers (none for a workload without public ports).
func (p *Provider) ensureLoadBalancing(ctx context.Context, k wkey, w schema.Workload) ([]ecstypes.LoadBalancer, *lbState, error) {
	ports := elbPorts(w)
	if len(ports) == 0 {
		return nil, nil, nil
	}
	if p.elb == nil {
		return nil, nil, providers.Permanent(fmt.Errorf("workload %s: public ports need an ELBv2 client (WithELBv2)", k.Workload))
	}
	st, err := p.ensureLB(ctx, k)
	if err != nil {
		return nil, nil, err
	}
	vpc, err := p.vpcID(ctx)
	if err != nil {
		return nil, nil, err
	}
	listeners, err := p.listenersOf(ctx, st.arn)
	if err != nil {
		return nil, nil, err
	}
	var ltags map[string]map[string]string
	if len(listeners) > 0 && !st.owned {
		arns := make([]string, len(listeners))
		for i, l := range listeners {
			arns[i] = aws.ToString(l.ListenerArn)
		}
		if ltags, err = p.tagsOf(ctx, arns); err != nil {
			return nil, nil, err
		}
	}
	// A port another listener holds fails the whole Apply before anything is made for it.
	for _, pt := range ports {
		for _, l := range listeners {
			if aws.ToInt32(l.Port) == int32(pt.port) && !st.owned && !k.owns(ltags[aws.ToString(l.ListenerArn)]) {
				return nil, nil, providers.Permanent(fmt.Errorf("workload %s: port %d of load balancer %s has a listener berth does not own (%s); "+
					"choose another port or free it", k.Workload, pt.port, st.name, aws.ToString(l.ListenerArn)))
			}
		}
	}
	want := healthOf(w.Health)
	var lbs []ecstypes.LoadBalancer
	for _, pt := range ports {
		tg, err := p.ensureTargetGroup(ctx, k, pt, vpc, want)
		if err != nil {
			return nil, nil, err
		}
		if err := p.ensureListener(ctx, k, st, pt, tg, listeners, ltags); err != nil {
			return nil, nil, err
		}
		lbs = append(lbs, ecstypes.LoadBalancer{TargetGroupArn: tg.TargetGroupArn, ContainerName: aws.String(ContainerName),
			ContainerPort: aws.Int32(int32(pt.port))})
	}
	return lbs, st, nil
}

// ensureLB finds the target's load balancer (settings.loadBalancer) or berth's own for the workload, creating
// the latter when it is missing. A load balancer of berth's name that does not carry the workload's tags is an
// error: berth never takes over what it did not make.
func (p *Provider) ensureLB(ctx context.Context, k wkey) (*lbState, error) {
	if ref := p.set.loadBalancer; ref != "" {
		lb, err := p.findLoadBalancer(ctx, ref)
		if err != nil {
			return nil, err
		}
		if lb == nil {
			return nil, providers.Permanent(fmt.Errorf("target %q: settings.loadBalancer %q: no such load balancer", p.target, ref))
		}
		if lb.Type != elbtypes.LoadBalancerTypeEnumNetwork {
			return nil, providers.Permanent(fmt.Errorf("target %q: settings.loadBalancer %q is an %s load balancer; berth adds TCP/UDP listeners, which need a network load balancer",
				p.target, ref, lb.Type))
		}
		return &lbState{arn: aws.ToString(lb.LoadBalancerArn), name: aws.ToString(lb.LoadBalancerName), dns: aws.ToString(lb.DNSName)}, nil
	}
	name := lbName(k)
	lb, err := p.findLoadBalancer(ctx, name)
	if err != nil {
		return nil, err
	}
	if lb != nil {
		tags, err := p.tagsOf(ctx, []string{aws.ToString(lb.LoadBalancerArn)})
		if err != nil {
			return nil, err
		}
		if !k.owns(tags[aws.ToString(lb.LoadBalancerArn)]) {
			return nil, providers.Permanent(fmt.Errorf("load balancer %s exists and is not owned by berth instance %q environment %q workload %q; rename or remove it",
				name, k.Instance, k.Environment, k.Workload))
		}
		return &lbState{arn: aws.ToString(lb.LoadBalancerArn), name: name, dns: aws.ToString(lb.DNSName), owned: true}, nil
	}
	p.log.InfoContext(ctx, "creating load balancer", "env", k.Environment, "workload", k.Workload, "loadBalancer", name)
	in := &elb.CreateLoadBalancerInput{Name: aws.String(name), Type: elbtypes.LoadBalancerTypeEnumNetwork,
		Scheme: elbtypes.LoadBalancerSchemeEnumInternetFacing, Subnets: p.set.subnets, SecurityGroups: p.set.securityGroups,
		Tags: elbTags(k)}
	if p.set.internal {
		in.Scheme = elbtypes.LoadBalancerSchemeEnumInternal
	}
	var out *elb.CreateLoadBalancerOutput
	if err := p.callELB(ctx, "CreateLoadBalancer", func(ctx context.Context) error {
		var err error
		out, err = p.elb.CreateLoadBalancer(ctx, in) // idempotent: the same settings succeed again
		return err
	}); err != nil {
		return nil, fmt.Errorf("workload %s: %w", k.Workload, err)
	}
	if len(out.LoadBalancers) == 0 {
		return nil, fmt.Errorf("workload %s: CreateLoadBalancer answered no load balancer", k.Workload)
	}
	lb = &out.LoadBalancers[0]
	return &lbState{arn: aws.ToString(lb.LoadBalancerArn), name: name, dns: aws.ToString(lb.DNSName), owned: true}, nil
}

// ensureTargetGroup finds or creates the target group of one port, and brings its health check to want.
func (p *Provider) ensureTargetGroup(ctx context.Context, k wkey, pt elbPort, vpc string, want elbHealth) (*elbtypes.TargetGroup, error) {
	name := tgName(k, pt.port, pt.protocol)
	tg, err := p.findTargetGroup(ctx, &elb.DescribeTargetGroupsInput{Names: []string{name}})
	if err != nil {
		return nil, err
	}
	hcTag := "default"
	if want.spec {
		hcTag = "spec"
	}
	if tg == nil {
		p.log.InfoContext(ctx, "creating target group", "env", k.Environment, "workload", k.Workload, "targetGroup", name)
		in := &elb.CreateTargetGroupInput{Name: aws.String(name), Protocol: elbtypes.ProtocolEnum(pt.protocol),
			Port: aws.Int32(int32(pt.port)), VpcId: aws.String(vpc), TargetType: elbtypes.TargetTypeEnumIp,
			HealthCheckProtocol: elbtypes.ProtocolEnum(want.protocol), HealthCheckPort: aws.String(want.port),
			HealthCheckIntervalSeconds: aws.Int32(want.interval), HealthCheckTimeoutSeconds: aws.Int32(want.timeout),
			HealthyThresholdCount: aws.Int32(want.healthyCount), UnhealthyThresholdCount: aws.Int32(want.unhealthyCount),
			Tags: elbTags(k, elbtypes.Tag{Key: aws.String(LabelPort), Value: aws.String(pt.label())},
				elbtypes.Tag{Key: aws.String(LabelHealthCheck), Value: aws.String(hcTag)})}
		if want.protocol == "HTTP" {
			in.HealthCheckPath, in.Matcher = aws.String(want.path), &elbtypes.Matcher{HttpCode: aws.String(httpMatcher)}
		}
		var out *elb.CreateTargetGroupOutput
		if err := p.callELB(ctx, "CreateTargetGroup", func(ctx context.Context) error {
			var err error
			out, err = p.elb.CreateTargetGroup(ctx, in)
			return err
		}); err != nil {
			return nil, fmt.Errorf("workload %s: %w", k.Workload, err)
		}
		if len(out.TargetGroups) == 0 {
			return nil, fmt.Errorf("workload %s: CreateTargetGroup answered no target group", k.Workload)
		}
		return &out.TargetGroups[0], nil
	}
	arn := aws.ToString(tg.TargetGroupArn)
	tags, err := p.tagsOf(ctx, []string{arn})
	if err != nil {
		return nil, err
	}
	if !k.owns(tags[arn]) {
		return nil, providers.Permanent(fmt.Errorf("target group %s exists and is not owned by berth instance %q environment %q workload %q; rename or remove it",
			name, k.Instance, k.Environment, k.Workload))
	}
	if have := readHealth(*tg, tags[arn]); have != want {
		p.log.InfoContext(ctx, "modifying target group health check", "env", k.Environment, "workload", k.Workload, "targetGroup", name)
		in := &elb.ModifyTargetGroupInput{TargetGroupArn: tg.TargetGroupArn,
			HealthCheckProtocol: elbtypes.ProtocolEnum(want.protocol), HealthCheckPort: aws.String(want.port),
			HealthCheckIntervalSeconds: aws.Int32(want.interval), HealthCheckTimeoutSeconds: aws.Int32(want.timeout),
			HealthyThresholdCount: aws.Int32(want.healthyCount), UnhealthyThresholdCount: aws.Int32(want.unhealthyCount)}
		if want.protocol == "HTTP" {
			in.HealthCheckPath, in.Matcher = aws.String(want.path), &elbtypes.Matcher{HttpCode: aws.String(httpMatcher)}
		}
		var out *elb.ModifyTargetGroupOutput
		if err := p.callELB(ctx, "ModifyTargetGroup", func(ctx context.Context) error {
			var err error
			out, err = p.elb.ModifyTargetGroup(ctx, in)
			return err
		}); err != nil {
			return nil, fmt.Errorf("workload %s: %w", k.Workload, err)
		}
		if tags[arn][LabelHealthCheck] != hcTag {
			if err := p.callELB(ctx, "AddTags", func(ctx context.Context) error {
				_, err := p.elb.AddTags(ctx, &elb.AddTagsInput{ResourceArns: []string{arn},
					Tags: []elbtypes.Tag{{Key: aws.String(LabelHealthCheck), Value: aws.String(hcTag)}}})
				return err
			}); err != nil {
				return nil, fmt.Errorf("workload %s: %w", k.Workload, err)
			}
		}
		if len(out.TargetGroups) > 0 {
			tg = &out.TargetGroups[0]
		}
	}
	return tg, nil
}

// ensureListener makes the listener of one public port forward to its target group: an existing one of the
// workload's that forwards elsewhere (a hand edit) is replaced; a listener on the port that is not the
// workload's (on the target's shared load balancer) is an error, never taken over.
func (p *Provider) ensureListener(ctx context.Context, k wkey, st *lbState, pt elbPort, tg *elbtypes.TargetGroup,
	listeners []elbtypes.Listener, ltags map[string]map[string]string) error {
	for _, l := range listeners {
		if aws.ToInt32(l.Port) != int32(pt.port) {
			continue
		}
		ours := st.owned || k.owns(ltags[aws.ToString(l.ListenerArn)])
		if !ours {
			return providers.Permanent(fmt.Errorf("workload %s: port %d of load balancer %s has a listener berth does not own (%s); "+
				"choose another port or free it", k.Workload, pt.port, st.name, aws.ToString(l.ListenerArn)))
		}
		if forwardsTo(l) == aws.ToString(tg.TargetGroupArn) && string(l.Protocol) == pt.protocol {
			return nil
		}
		p.log.InfoContext(ctx, "replacing listener", "env", k.Environment, "workload", k.Workload, "port", pt.port)
		if err := p.callELB(ctx, "DeleteListener", func(ctx context.Context) error {
			_, err := p.elb.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: l.ListenerArn})
			return err
		}); err != nil && !isCode(err, "ListenerNotFound") {
			return fmt.Errorf("workload %s: %w", k.Workload, err)
		}
	}
	p.log.InfoContext(ctx, "creating listener", "env", k.Environment, "workload", k.Workload, "loadBalancer", st.name, "port", pt.port)
	in := &elb.CreateListenerInput{LoadBalancerArn: aws.String(st.arn), Protocol: elbtypes.ProtocolEnum(pt.protocol),
		Port: aws.Int32(int32(pt.port)), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroupArn}},
		Tags: elbTags(k, elbtypes.Tag{Key: aws.String(LabelPort), Value: aws.String(pt.label())})}
	if err := p.callELB(ctx, "CreateListener", func(ctx context.Context) error {
		_, err := p.elb.CreateListener(ctx, in)
		return err
	}); err != nil {
		return fmt.Errorf("workload %s: %w", k.Workload, err)
	}
	return nil
}

// forwardsTo is the target group a listener's default action forwards to ("" for another action).
func forwardsTo(l elbtypes.Listener) string {
	for _, a := range l.DefaultActions {
		if a.Type == elbtypes.ActionTypeEnumForward {
			if a.TargetGroupArn != nil {
				return aws.ToString(a.TargetGroupArn)
			}
			if a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) == 1 {
				return aws.ToString(a.ForwardConfig.TargetGroups[0].TargetGroupArn)
			}
		}
	}
	return ""
}

// sameLoadBalancers tells whether a service's loadBalancers are want (order aside).
func sameLoadBalancers(have, want []ecstypes.LoadBalancer) bool {
	key := func(l []ecstypes.LoadBalancer) []string {
		out := make([]string, len(l))
		for i, lb := range l {
			out[i] = fmt.Sprintf("%s|%s|%d", aws.ToString(lb.TargetGroupArn), aws.ToString(lb.ContainerName), aws.ToInt32(lb.ContainerPort))
		}
		sort.Strings(out)
		return out
	}
	a, b := key(have), key(want)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// gracePeriod is the service's healthCheckGracePeriodSeconds: health.startPeriod in whole seconds, for a service
// with load balancers (nil otherwise: ECS refuses it without).
func gracePeriod(w schema.Workload, lbs []ecstypes.LoadBalancer) *int32 {
	if len(lbs) == 0 {
		return nil
	}
	g := int32(0)
	if w.Health != nil {
		g = int32(secsUp(w.Health.StartPeriod))
	}
	return aws.Int32(g)
}

// targetHealth reads the health of the targets of the service's target groups: "ip:port" → state, per group ARN.
// A group that is gone is left out (and named in the second result).
func (p *Provider) targetHealth(ctx context.Context, lbs []ecstypes.LoadBalancer) (map[string]map[string]string, []string, error) {
	out := map[string]map[string]string{}
	var gone []string
	for _, lb := range lbs {
		arn := aws.ToString(lb.TargetGroupArn)
		var res *elb.DescribeTargetHealthOutput
		err := p.callELB(ctx, "DescribeTargetHealth", func(ctx context.Context) error {
			var err error
			res, err = p.elb.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
			return err
		})
		if isCode(err, "TargetGroupNotFound") {
			gone = append(gone, arn)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		m := map[string]string{}
		for _, d := range res.TargetHealthDescriptions {
			if d.Target == nil || d.TargetHealth == nil {
				continue
			}
			m[net.JoinHostPort(aws.ToString(d.Target.Id), strconv.Itoa(int(aws.ToInt32(d.Target.Port))))] = string(d.TargetHealth.State)
		}
		out[arn] = m
	}
	return out, gone, nil
}

// taskTargetState is a task's state in the target groups: "healthy" when every group finds it healthy,
// "unhealthy" when one finds it unhealthy, else "starting".
func taskTargetState(t ecstypes.Task, lbs []ecstypes.LoadBalancer, health map[string]map[string]string) string {
	ip := taskAddress(t)
	state := "healthy"
	for _, lb := range lbs {
		s := health[aws.ToString(lb.TargetGroupArn)][net.JoinHostPort(ip, strconv.Itoa(int(aws.ToInt32(lb.ContainerPort))))]
		switch {
		case s == "unhealthy":
			return "unhealthy"
		case s != "healthy":
			state = "starting"
		}
	}
	return state
}

// observeLB reads the load balancing of an observed service: the endpoints (the load balancer's DNS name and each
// public port's listener), the health check of its target groups, what is missing.
func (p *Provider) observeLB(ctx context.Context, k wkey, svc ecstypes.Service, spec schema.Workload) (*lbState, error) {
	st := &lbState{groups: map[string]elbtypes.TargetGroup{}, listeners: map[int32]elbtypes.Listener{}}
	if p.elb == nil {
		return st, nil
	}
	ref, owned := p.set.loadBalancer, false
	if ref == "" {
		ref, owned = lbName(k), true
	}
	lb, err := p.findLoadBalancer(ctx, ref)
	if err != nil {
		return nil, err
	}
	if lb == nil {
		st.missing = append(st.missing, "load balancer "+ref)
	} else {
		st.arn, st.name, st.dns, st.owned = aws.ToString(lb.LoadBalancerArn), aws.ToString(lb.LoadBalancerName), aws.ToString(lb.DNSName), owned
		ls, err := p.listenersOf(ctx, st.arn)
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			st.listeners[aws.ToInt32(l.Port)] = l
		}
	}
	var arns []string
	for _, l := range svc.LoadBalancers {
		tg, err := p.findTargetGroup(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: []string{aws.ToString(l.TargetGroupArn)}})
		if err != nil {
			return nil, err
		}
		if tg == nil {
			st.missing = append(st.missing, "target group "+targetGroupName(aws.ToString(l.TargetGroupArn)))
			continue
		}
		arns = append(arns, aws.ToString(tg.TargetGroupArn))
		st.groups[strconv.Itoa(int(aws.ToInt32(l.ContainerPort)))] = *tg
	}
	tags, err := p.tagsOf(ctx, arns)
	if err != nil {
		return nil, err
	}
	for _, pt := range elbPorts(spec) {
		l, ok := st.listeners[int32(pt.port)]
		tg, has := st.groups[strconv.Itoa(pt.port)]
		if lb != nil && (!ok || !has || forwardsTo(l) != aws.ToString(tg.TargetGroupArn)) {
			st.missing = append(st.missing, fmt.Sprintf("listener %s:%d", st.name, pt.port))
		}
	}
	st.tags = tags
	return st, nil
}

// targetGroupName is the name part of a target group ARN (…:targetgroup/<name>/<id>).
func targetGroupName(arn string) string {
	if _, rest, ok := strings.Cut(arn, ":targetgroup/"); ok {
		name, _, _ := strings.Cut(rest, "/")
		return name
	}
	return arn
}

// endpointsOf are the endpoints of the public ports: the load balancer's DNS name and the port, where the
// port's listener exists.
func (st *lbState) endpointsOf(spec schema.Workload) []providers.Endpoint {
	if st == nil || st.dns == "" {
		return nil
	}
	var out []providers.Endpoint
	for _, pt := range spec.Ports {
		if _, ok := st.listeners[int32(pt.Port)]; pt.Public && ok {
			out = append(out, providers.Endpoint{Port: pt.Port, Address: net.JoinHostPort(st.dns, strconv.Itoa(pt.Port))})
		}
	}
	return out
}

// deleteLoadBalancing removes the ELBv2 objects of a workload after its service is gone: berth's own load
// balancer (its listeners go with it) or the workload's listeners on the target's load balancer, then the
// workload's target groups (the service's, and those the listeners forwarded to). Only objects carrying the
// workload's tags are touched.
func (p *Provider) deleteLoadBalancing(ctx context.Context, k wkey, tgArns []string) error {
	if p.elb == nil {
		return nil
	}
	ref, owned := p.set.loadBalancer, false
	if ref == "" {
		ref, owned = lbName(k), true
	}
	lb, err := p.findLoadBalancer(ctx, ref)
	if err != nil {
		return err
	}
	if lb != nil {
		arn := aws.ToString(lb.LoadBalancerArn)
		ls, err := p.listenersOf(ctx, arn)
		if err != nil {
			return err
		}
		var larns []string
		for _, l := range ls {
			larns = append(larns, aws.ToString(l.ListenerArn))
		}
		check := append([]string{arn}, larns...)
		tags, err := p.tagsOf(ctx, check)
		if err != nil {
			return err
		}
		for _, l := range ls {
			if owned || k.owns(tags[aws.ToString(l.ListenerArn)]) {
				if t := forwardsTo(l); t != "" {
					tgArns = append(tgArns, t)
				}
			}
		}
		switch {
		case owned && k.owns(tags[arn]):
			p.log.InfoContext(ctx, "deleting load balancer", "env", k.Environment, "workload", k.Workload, "loadBalancer", ref)
			if err := p.callELB(ctx, "DeleteLoadBalancer", func(ctx context.Context) error {
				_, err := p.elb.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(arn)})
				return err
			}); err != nil && !isCode(err, "LoadBalancerNotFound") {
				return err
			}
		case !owned:
			for _, l := range ls {
				if !k.owns(tags[aws.ToString(l.ListenerArn)]) {
					continue
				}
				if err := p.callELB(ctx, "DeleteListener", func(ctx context.Context) error {
					_, err := p.elb.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: l.ListenerArn})
					return err
				}); err != nil && !isCode(err, "ListenerNotFound") {
					return err
				}
			}
		}
	}
	return p.deleteTargetGroups(ctx, k, tgArns, nil)
}

// deleteTargetGroups deletes the target groups among arns that carry k's tags, except those in keep. ResourceInUse
// (a listener or the service not yet let go) is retried as transient.
func (p *Provider) deleteTargetGroups(ctx context.Context, k wkey, arns []string, keep map[string]bool) error {
	seen := map[string]bool{}
	var todo []string
	for _, a := range arns {
		if a != "" && !seen[a] && !keep[a] {
			seen[a] = true
			todo = append(todo, a)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	var exist []string
	for _, a := range todo {
		tg, err := p.findTargetGroup(ctx, &elb.DescribeTargetGroupsInput{TargetGroupArns: []string{a}})
		if err != nil {
			return err
		}
		if tg != nil {
			exist = append(exist, a)
		}
	}
	tags, err := p.tagsOf(ctx, exist)
	if err != nil {
		return err
	}
	for _, a := range exist {
		if !k.owns(tags[a]) {
			continue
		}
		p.log.InfoContext(ctx, "deleting target group", "env", k.Environment, "workload", k.Workload, "targetGroup", targetGroupName(a))
		if err := p.callELB(ctx, "DeleteTargetGroup", func(ctx context.Context) error {
			_, err := p.elb.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: aws.String(a)})
			return err
		}); err != nil && !isCode(err, "TargetGroupNotFound") {
			return err
		}
	}
	return nil
}

// pruneLoadBalancing removes, after a rollout that changed the service's load balancers, what the workload no
// longer uses: the listeners forwarding to the target groups the service named before and does not now (ports no
// longer public), those target groups, and berth's own load balancer when no port is public any more.
func (p *Provider) pruneLoadBalancing(ctx context.Context, k wkey, w schema.Workload, old, now []ecstypes.LoadBalancer) error {
	if p.elb == nil {
		return nil
	}
	keep := map[string]bool{}
	for _, lb := range now {
		keep[aws.ToString(lb.TargetGroupArn)] = true
	}
	stale := map[string]bool{}
	var staleArns []string
	for _, lb := range old {
		if a := aws.ToString(lb.TargetGroupArn); !keep[a] && !stale[a] {
			stale[a] = true
			staleArns = append(staleArns, a)
		}
	}
	if len(elbPorts(w)) == 0 {
		return p.deleteLoadBalancing(ctx, k, staleArns)
	}
	ref, owned := p.set.loadBalancer, false
	if ref == "" {
		ref, owned = lbName(k), true
	}
	lb, err := p.findLoadBalancer(ctx, ref)
	if err != nil || lb == nil {
		return err
	}
	ls, err := p.listenersOf(ctx, aws.ToString(lb.LoadBalancerArn))
	if err != nil {
		return err
	}
	var larns []string
	for _, l := range ls {
		larns = append(larns, aws.ToString(l.ListenerArn))
	}
	tags, err := p.tagsOf(ctx, larns)
	if err != nil {
		return err
	}
	for _, l := range ls {
		if !stale[forwardsTo(l)] || !(owned || k.owns(tags[aws.ToString(l.ListenerArn)])) {
			continue
		}
		if err := p.callELB(ctx, "DeleteListener", func(ctx context.Context) error {
			_, err := p.elb.DeleteListener(ctx, &elb.DeleteListenerInput{ListenerArn: l.ListenerArn})
			return err
		}); err != nil && !isCode(err, "ListenerNotFound") {
			return err
		}
	}
	return p.deleteTargetGroups(ctx, k, staleArns, keep)
}
