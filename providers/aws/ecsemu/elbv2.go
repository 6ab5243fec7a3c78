package ecsemu

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ELBv2Op prefixes the Request.Op of the Elastic Load Balancing v2 calls the emulator serves
// ("elbv2:CreateTargetGroup"), so that they are told from ECS's in Requests and can be given faults of their own
// with FailOp (Fail's faults of any operation apply to them too).
const ELBv2Op = "elbv2:"

// ELBv2Version is the API version of the ELBv2 Query protocol (the Version parameter, and the answers' XML
// namespace).
const ELBv2Version = "2015-12-01"

const elbv2NS = "http://elasticloadbalancing.amazonaws.com/doc/" + ELBv2Version + "/"

// ELBv2 limits the emulator enforces, as the API reference documents them.
const (
	maxELBName       = 32
	maxTagsELB       = 50
	maxDescribeTags  = 20
	maxPageSize      = 400
	minHCInterval    = 5
	maxHCInterval    = 300
	minHCTimeout     = 2
	maxHCTimeout     = 120
	minHCThreshold   = 2
	maxHCThreshold   = 10
	defaultDrainStep = 1
)

// elbNameRE is what a load balancer or target group name may be: 1–32 letters, digits and hyphens, not starting
// or ending with a hyphen.
var elbNameRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?$`)

// HealthProbe is what the emulated load balancer checks one target with: the target group's health check and
// what answers at the target (the task registered at that address, if any: its image and environment).
type HealthProbe struct {
	TargetGroup string // name
	Protocol    string // TCP, HTTP or HTTPS
	Path        string // HTTP(S) only
	Port        int    // the port checked (the target's own for traffic-port)
	IP          string
	Image       string            // "" when no task has the address
	Env         map[string]string // the task's environment (nil when none)
}

type loadBalancer struct {
	arn, name, dns, scheme, typ, ipType, state string
	subnets, securityGroups                    []string
	tags                                       []Tag
	created                                    float64
}

type hcConf struct {
	protocol, path, port, matcher         string
	interval, timeout, healthy, unhealthy int
}

type targetGroup struct {
	arn, name, protocol, vpc, targetType string
	port                                 int
	hc                                   hcConf
	tags                                 []Tag
	targets                              map[string]*target // "ip:port"
}

type target struct {
	id              string
	port            int
	state, reason   string
	ok, fail        int // consecutive results
	drainUntil      int // step
	registeredByECS bool
}

type listener struct {
	arn, lb, protocol, tg string
	port                  int
	tags                  []Tag
}

type elbState struct {
	lbs       map[string]*loadBalancer
	lbOrder   []string
	tgs       map[string]*targetGroup
	tgOrder   []string
	listeners map[string]*listener
	lisOrder  []string
	health    func(HealthProbe) bool
}

func newELBState() elbState {
	return elbState{lbs: map[string]*loadBalancer{}, tgs: map[string]*targetGroup{}, listeners: map[string]*listener{}}
}

// SetTargetHealth decides how the emulated load balancer finds each target of a target group with a listener: f
// is called (with the emulator's lock held: it must not call the emulator) at every step for every registered
// target, and its answers count toward the group's healthy and unhealthy thresholds. Nil (the default) finds a
// target healthy when a running task has its address and unhealthy otherwise.
func (s *Server) SetTargetHealth(f func(HealthProbe) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.elb.health = f
}

// TargetStates returns the state of each target of the named target group ("ip:port" → initial, healthy,
// unhealthy, unused or draining); nil for an unknown group.
func (s *Server) TargetStates(name string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tg := range s.elb.tgs {
		if tg.name == name {
			out := map[string]string{}
			for k, t := range tg.targets {
				out[k] = t.state
			}
			return out
		}
	}
	return nil
}

// DeleteTargetGroupByHand deletes the named target group out of band, as an operator would in the console
// after detaching it: its listeners' forward actions go with it and any service naming it keeps the dangling
// ARN. It returns false when no group has that name.
func (s *Server) DeleteTargetGroupByHand(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for arn, tg := range s.elb.tgs {
		if tg.name == name {
			for la, l := range s.elb.listeners {
				if l.tg == arn {
					delete(s.elb.listeners, la)
					s.elb.lisOrder = slices.DeleteFunc(s.elb.lisOrder, func(a string) bool { return a == la })
				}
			}
			delete(s.elb.tgs, arn)
			s.elb.tgOrder = slices.DeleteFunc(s.elb.tgOrder, func(a string) bool { return a == arn })
			return true
		}
	}
	return false
}

// DeleteListenerByHand deletes the listener of the named load balancer on port out of band; false when there is
// none.
func (s *Server) DeleteListenerByHand(lbName string, port int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for arn, l := range s.elb.listeners {
		if lb := s.elb.lbs[l.lb]; lb != nil && lb.name == lbName && l.port == port {
			delete(s.elb.listeners, arn)
			s.elb.lisOrder = slices.DeleteFunc(s.elb.lisOrder, func(a string) bool { return a == arn })
			return true
		}
	}
	return false
}

// LoadBalancerNames returns the names of the load balancers that exist, sorted.
func (s *Server) LoadBalancerNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, lb := range s.elb.lbs {
		out = append(out, lb.name)
	}
	sort.Strings(out)
	return out
}

// TargetGroupNames returns the names of the target groups that exist, sorted.
func (s *Server) TargetGroupNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, tg := range s.elb.tgs {
		out = append(out, tg.name)
	}
	sort.Strings(out)
	return out
}

// elbError is an ELBv2 Query protocol error.
type elbError struct {
	status        int
	code, message string
}

func validation(format string, a ...any) *elbError {
	return &elbError{400, "ValidationError", fmt.Sprintf(format, a...)}
}

// serveELBv2 answers one ELBv2 Query protocol request (POST / with a form body: Action, Version=2015-12-01 and the
// parameters). It does not advance the simulation: the load balancer is another service, and its health checks
// run with the steps ECS's requests make.
func (s *Server) serveELBv2(w http.ResponseWriter, r *http.Request, form url.Values) {
	action := form.Get("Action")
	op := ELBv2Op + action
	s.mu.Lock()
	params := map[string]any{}
	for k, v := range form {
		params[k] = strings.Join(v, ",")
	}
	pb, _ := json.Marshal(params)
	s.requests = append(s.requests, Request{Op: op, Body: pb})
	reqID := fmt.Sprintf("req-%d", len(s.requests))
	kind := s.takeFault(op)
	var out *xw
	var e *elbError
	switch {
	case !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 "):
		e = &elbError{403, "InvalidClientTokenId", "The security token included in the request is invalid."}
	case kind != "":
		e = elbFault(kind, action, s.opts.Account)
	default:
		h := map[string]func(url.Values, *xw) *elbError{
			"CreateLoadBalancer":    s.createLoadBalancer,
			"DescribeLoadBalancers": s.describeLoadBalancers,
			"DeleteLoadBalancer":    s.deleteLoadBalancer,
			"CreateTargetGroup":     s.createTargetGroup,
			"DescribeTargetGroups":  s.describeTargetGroups,
			"ModifyTargetGroup":     s.modifyTargetGroup,
			"DeleteTargetGroup":     s.deleteTargetGroup,
			"CreateListener":        s.createListener,
			"DescribeListeners":     s.describeListeners,
			"DeleteListener":        s.deleteListener,
			"RegisterTargets":       s.registerTargets,
			"DeregisterTargets":     s.deregisterTargets,
			"DescribeTargetHealth":  s.describeTargetHealth,
			"AddTags":               s.addTags,
			"RemoveTags":            s.removeTags,
			"DescribeTags":          s.describeTags,
		}[action]
		if h == nil {
			e = &elbError{400, "InvalidAction", fmt.Sprintf("Could not find operation %s for version %s", action, ELBv2Version)}
			break
		}
		out = &xw{}
		e = h(form, out)
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-RequestId", reqID)
	if e != nil {
		typ := "Sender"
		if e.status >= 500 {
			typ = "Receiver"
		}
		w.WriteHeader(e.status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
			elbv2NS, typ, esc(e.code), esc(e.message), reqID)
		return
	}
	fmt.Fprintf(w, `<%sResponse xmlns="%s"><%sResult>%s</%sResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>`,
		action, elbv2NS, action, out.b.String(), action, reqID, action)
}

// elbFault is the ELBv2 answer to a fault kind.
func elbFault(kind, action, account string) *elbError {
	switch kind {
	case Throttle:
		return &elbError{400, "Throttling", "Rate exceeded"}
	case Unavailable:
		return &elbError{503, "ServiceUnavailable", "Service is unavailable. Please try again later."}
	case Denied:
		return &elbError{403, "AccessDenied", fmt.Sprintf("User: arn:aws:iam::%s:user/berth is not authorized to perform: "+
			"elasticloadbalancing:%s because no identity-based policy allows the elasticloadbalancing:%s action", account, action, action)}
	case Unrecognized:
		return &elbError{403, "InvalidClientTokenId", "The security token included in the request is invalid."}
	case Limit:
		return &elbError{400, "TooManyLoadBalancers", "The quota for the number of load balancers has been reached."}
	case Conflict:
		return &elbError{400, "PriorRequestNotComplete", "The previous request has not completed."}
	}
	return &elbError{500, "InternalFailure", "An internal error has occurred."}
}

// xw builds the XML of an answer's Result element.
type xw struct{ b strings.Builder }

func esc(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func (w *xw) open(tag string)  { w.b.WriteString("<" + tag + ">") }
func (w *xw) close(tag string) { w.b.WriteString("</" + tag + ">") }
func (w *xw) leaf(tag, v string) {
	w.b.WriteString("<" + tag + ">" + esc(v) + "</" + tag + ">")
}
func (w *xw) list(tag string, items []string) {
	w.open(tag)
	for _, it := range items {
		w.leaf("member", it)
	}
	w.close(tag)
}

// members reads a Query list: prefix.member.1, prefix.member.2, ... in order.
func members(form url.Values, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[fmt.Sprintf("%s.member.%d", prefix, i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

// structMembers reads a Query list of structures: prefix.member.N.Field.
func structMembers(form url.Values, prefix string) []map[string]string {
	var out []map[string]string
	for i := 1; ; i++ {
		p := fmt.Sprintf("%s.member.%d.", prefix, i)
		m := map[string]string{}
		for k, v := range form {
			if f, ok := strings.CutPrefix(k, p); ok {
				m[f] = v[0]
			}
		}
		if len(m) == 0 {
			return out
		}
		out = append(out, m)
	}
}

func formTags(form url.Values) ([]Tag, *elbError) {
	var tags []Tag
	seen := map[string]bool{}
	for _, m := range structMembers(form, "Tags") {
		k := m["Key"]
		switch {
		case k == "" || len(k) > 128 || len(m["Value"]) > 256:
			return nil, validation("Tag keys must be 1-128 characters and values at most 256.")
		case strings.HasPrefix(k, "aws:"):
			return nil, validation("Tag keys starting with 'aws:' are reserved.")
		case seen[k]:
			return nil, &elbError{400, "DuplicateTagKeys", fmt.Sprintf("Tag key '%s' is duplicated.", k)}
		}
		seen[k] = true
		tags = append(tags, Tag{Key: k, Value: m["Value"]})
	}
	if len(tags) > maxTagsELB {
		return nil, &elbError{400, "TooManyTags", "The quota for the number of tags that can be assigned to a resource has been reached."}
	}
	return tags, nil
}

func (s *Server) elbARN(kind, name string) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("elbv2-%s-%s-%d", kind, name, s.step)))
	return fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:%s/%s/%s", s.opts.Region, s.opts.Account, kind, name, hex.EncodeToString(sum[:8]))
}

func checkName(kind, name string) *elbError {
	if len(name) > maxELBName || !elbNameRE.MatchString(name) {
		return validation("%s name '%s' must be at most 32 characters, contain only alphanumeric characters or hyphens, "+
			"and must not begin or end with a hyphen", kind, name)
	}
	return nil
}

func pageOf(form url.Values, items []string) ([]string, string, *elbError) {
	size := maxPageSize
	if v := form.Get("PageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return nil, "", validation("PageSize must be between 1 and 400.")
		}
		size = n
	}
	start := 0
	if m := form.Get("Marker"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 || n > len(items) {
			return nil, "", validation("Invalid Marker.")
		}
		start = n
	}
	end := min(start+size, len(items))
	next := ""
	if end < len(items) {
		next = strconv.Itoa(end)
	}
	return items[start:end], next, nil
}

// ---- load balancers

func (s *Server) createLoadBalancer(form url.Values, out *xw) *elbError {
	name := form.Get("Name")
	if err := checkName("Load balancer", name); err != nil {
		return err
	}
	if strings.HasPrefix(name, "internal-") {
		return validation("Load balancer name cannot begin with 'internal-'.")
	}
	typ, scheme, ipType := form.Get("Type"), form.Get("Scheme"), form.Get("IpAddressType")
	if typ == "" {
		typ = "application"
	}
	if scheme == "" {
		scheme = "internet-facing"
	}
	if ipType == "" {
		ipType = "ipv4"
	}
	switch {
	case typ != "network" && typ != "application" && typ != "gateway":
		return validation("Type must be one of application, network, gateway.")
	case typ != "network":
		return validation("The emulator serves network load balancers only, not %s.", typ)
	case scheme != "internet-facing" && scheme != "internal":
		return validation("Scheme must be internet-facing or internal.")
	}
	subnets, sgs := members(form, "Subnets"), members(form, "SecurityGroups")
	if len(subnets) == 0 {
		return validation("At least one subnet must be specified.")
	}
	if len(sgs) > 5 {
		return &elbError{400, "TooManySecurityGroups", "At most 5 security groups may be specified."}
	}
	tags, err := formTags(form)
	if err != nil {
		return err
	}
	for _, a := range s.elb.lbOrder {
		if lb := s.elb.lbs[a]; lb.name == name {
			if lb.typ == typ && lb.scheme == scheme && slices.Equal(lb.subnets, subnets) && slices.Equal(lb.securityGroups, sgs) {
				out.open("LoadBalancers")
				s.lbOut(out, lb)
				out.close("LoadBalancers")
				return nil // idempotent: the same settings succeed
			}
			return &elbError{400, "DuplicateLoadBalancerName", "A load balancer with the same name '" + name + "' exists, but with different settings"}
		}
	}
	arn := s.elbARN("loadbalancer/net", name)
	sum := sha256.Sum256([]byte(arn))
	lb := &loadBalancer{arn: arn, name: name, scheme: scheme, typ: typ, ipType: ipType, state: "provisioning",
		dns:     fmt.Sprintf("%s-%s.elb.%s.amazonaws.com", name, hex.EncodeToString(sum[:8]), s.opts.Region),
		subnets: subnets, securityGroups: sgs, tags: tags, created: s.now()}
	s.elb.lbs[arn] = lb
	s.elb.lbOrder = append(s.elb.lbOrder, arn)
	out.open("LoadBalancers")
	s.lbOut(out, lb)
	out.close("LoadBalancers")
	return nil
}

func (s *Server) lbOut(out *xw, lb *loadBalancer) {
	out.open("member")
	out.leaf("LoadBalancerArn", lb.arn)
	out.leaf("LoadBalancerName", lb.name)
	out.leaf("DNSName", lb.dns)
	out.leaf("CanonicalHostedZoneId", "Z2IFOLAFXWLO4F")
	out.leaf("CreatedTime", fmtTime(lb.created))
	out.leaf("Scheme", lb.scheme)
	out.leaf("Type", lb.typ)
	out.leaf("IpAddressType", lb.ipType)
	out.leaf("VpcId", s.vpc())
	out.open("State")
	out.leaf("Code", lb.state)
	out.close("State")
	out.open("AvailabilityZones")
	for i, sn := range lb.subnets {
		out.open("member")
		out.leaf("SubnetId", sn)
		out.leaf("ZoneName", fmt.Sprintf("%s%c", s.opts.Region, 'a'+i%3))
		out.close("member")
	}
	out.close("AvailabilityZones")
	out.list("SecurityGroups", lb.securityGroups)
	out.close("member")
}

func fmtTime(f float64) string {
	return time.UnixMilli(int64(f * 1000)).UTC().Format("2006-01-02T15:04:05.000Z")
}

func (s *Server) describeLoadBalancers(form url.Values, out *xw) *elbError {
	names, arns := members(form, "Names"), members(form, "LoadBalancerArns")
	if len(names) > 0 && len(arns) > 0 {
		return validation("Load balancer names and load balancer ARNs cannot be specified at the same time")
	}
	var sel []string
	switch {
	case len(names) > 0:
		for _, n := range names {
			i := slices.IndexFunc(s.elb.lbOrder, func(a string) bool { return s.elb.lbs[a].name == n })
			if i < 0 {
				return &elbError{400, "LoadBalancerNotFound", fmt.Sprintf("Load balancers '[%s]' not found", n)}
			}
			sel = append(sel, s.elb.lbOrder[i])
		}
	case len(arns) > 0:
		for _, a := range arns {
			if s.elb.lbs[a] == nil {
				return &elbError{400, "LoadBalancerNotFound", fmt.Sprintf("One or more load balancers not found")}
			}
			sel = append(sel, a)
		}
	default:
		sel = slices.Clone(s.elb.lbOrder)
	}
	page, next, err := pageOf(form, sel)
	if err != nil {
		return err
	}
	out.open("LoadBalancers")
	for _, a := range page {
		s.lbOut(out, s.elb.lbs[a])
	}
	out.close("LoadBalancers")
	if next != "" {
		out.leaf("NextMarker", next)
	}
	return nil
}

func (s *Server) deleteLoadBalancer(form url.Values, out *xw) *elbError {
	arn := form.Get("LoadBalancerArn")
	if s.elb.lbs[arn] == nil {
		return &elbError{400, "LoadBalancerNotFound", "One or more load balancers not found"}
	}
	for la, l := range s.elb.listeners {
		if l.lb == arn {
			delete(s.elb.listeners, la)
		}
	}
	s.elb.lisOrder = slices.DeleteFunc(s.elb.lisOrder, func(a string) bool { return s.elb.listeners[a] == nil })
	delete(s.elb.lbs, arn)
	s.elb.lbOrder = slices.DeleteFunc(s.elb.lbOrder, func(a string) bool { return a == arn })
	return nil
}

// ---- target groups

func intParam(form url.Values, k string, def, lo, hi int) (int, *elbError) {
	v := form.Get(k)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, validation("%s must be between %d and %d, not '%s'.", k, lo, hi, v)
	}
	return n, nil
}

// readHC reads the health check parameters of a create (base nil: ELBv2's defaults for protocol) or a modify (base
// the group's).
func readHC(form url.Values, protocol string, base *hcConf) (hcConf, *elbError) {
	var hc hcConf
	if base != nil {
		hc = *base
	} else {
		hc = hcConf{protocol: "TCP", port: "traffic-port", interval: 30, timeout: 10, healthy: 5, unhealthy: 2}
		if protocol == "HTTP" || protocol == "HTTPS" {
			hc.protocol, hc.timeout = protocol, 6
		}
	}
	if v := form.Get("HealthCheckProtocol"); v != "" {
		if v != "TCP" && v != "HTTP" && v != "HTTPS" {
			return hc, validation("Health check protocol '%s' is not supported for target groups with protocol %s.", v, protocol)
		}
		hc.protocol = v
		if v == "TCP" {
			hc.path, hc.matcher = "", ""
		}
	}
	if v := form.Get("HealthCheckPort"); v != "" {
		if v != "traffic-port" {
			if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 65535 {
				return hc, validation("Health check port '%s' must be 'traffic-port' or a port from 1 to 65535.", v)
			}
		}
		hc.port = v
	}
	if v := form.Get("HealthCheckPath"); v != "" {
		if hc.protocol == "TCP" {
			return hc, validation("Health check path cannot be specified with health check protocol TCP.")
		}
		if !strings.HasPrefix(v, "/") || len(v) > 1024 {
			return hc, validation("Health check path must begin with '/' and be at most 1024 characters.")
		}
		hc.path = v
	}
	if hc.protocol != "TCP" && hc.path == "" {
		hc.path = "/"
	}
	if v := form.Get("Matcher.HttpCode"); v != "" {
		if hc.protocol == "TCP" {
			return hc, validation("A matcher cannot be specified with health check protocol TCP.")
		}
		hc.matcher = v
	}
	if hc.protocol != "TCP" && hc.matcher == "" {
		hc.matcher = "200-399"
	}
	var err *elbError
	if hc.interval, err = intParam(form, "HealthCheckIntervalSeconds", hc.interval, minHCInterval, maxHCInterval); err != nil {
		return hc, err
	}
	if hc.timeout, err = intParam(form, "HealthCheckTimeoutSeconds", hc.timeout, minHCTimeout, maxHCTimeout); err != nil {
		return hc, err
	}
	if hc.healthy, err = intParam(form, "HealthyThresholdCount", hc.healthy, minHCThreshold, maxHCThreshold); err != nil {
		return hc, err
	}
	if hc.unhealthy, err = intParam(form, "UnhealthyThresholdCount", hc.unhealthy, minHCThreshold, maxHCThreshold); err != nil {
		return hc, err
	}
	if hc.timeout > hc.interval {
		return hc, validation("Health check timeout '%d' must be smaller than or equal to the interval '%d'.", hc.timeout, hc.interval)
	}
	return hc, nil
}

func (s *Server) createTargetGroup(form url.Values, out *xw) *elbError {
	name := form.Get("Name")
	if err := checkName("Target group", name); err != nil {
		return err
	}
	protocol, vpc, tt := form.Get("Protocol"), form.Get("VpcId"), form.Get("TargetType")
	if tt == "" {
		tt = "instance"
	}
	if !slices.Contains([]string{"TCP", "UDP", "TCP_UDP", "TLS", "HTTP", "HTTPS"}, protocol) {
		return validation("Protocol '%s' must be one of TCP, UDP, TCP_UDP, TLS, HTTP, HTTPS.", protocol)
	}
	if !slices.Contains([]string{"instance", "ip", "lambda", "alb"}, tt) {
		return validation("Target type '%s' is not valid.", tt)
	}
	port, err := intParam(form, "Port", 0, 1, 65535)
	if err != nil {
		return err
	}
	if port == 0 || vpc == "" {
		return validation("A port and a VPC ID must be specified for target groups of target type %s.", tt)
	}
	hc, err := readHC(form, protocol, nil)
	if err != nil {
		return err
	}
	tags, err := formTags(form)
	if err != nil {
		return err
	}
	for _, a := range s.elb.tgOrder {
		if tg := s.elb.tgs[a]; tg.name == name {
			if tg.protocol == protocol && tg.port == port && tg.vpc == vpc && tg.targetType == tt && tg.hc == hc {
				out.open("TargetGroups")
				s.tgOut(out, tg)
				out.close("TargetGroups")
				return nil
			}
			return &elbError{400, "DuplicateTargetGroupName", "A target group with the same name '" + name + "' exists, but with different settings"}
		}
	}
	tg := &targetGroup{arn: s.elbARN("targetgroup", name), name: name, protocol: protocol, port: port, vpc: vpc,
		targetType: tt, hc: hc, tags: tags, targets: map[string]*target{}}
	s.elb.tgs[tg.arn] = tg
	s.elb.tgOrder = append(s.elb.tgOrder, tg.arn)
	out.open("TargetGroups")
	s.tgOut(out, tg)
	out.close("TargetGroups")
	return nil
}

// tgLBs are the load balancers whose listeners forward to tg.
func (s *Server) tgLBs(arn string) []string {
	var out []string
	for _, la := range s.elb.lisOrder {
		if l := s.elb.listeners[la]; l.tg == arn && !slices.Contains(out, l.lb) {
			out = append(out, l.lb)
		}
	}
	return out
}

func (s *Server) tgOut(out *xw, tg *targetGroup) {
	out.open("member")
	out.leaf("TargetGroupArn", tg.arn)
	out.leaf("TargetGroupName", tg.name)
	out.leaf("Protocol", tg.protocol)
	out.leaf("Port", strconv.Itoa(tg.port))
	out.leaf("VpcId", tg.vpc)
	out.leaf("TargetType", tg.targetType)
	out.leaf("IpAddressType", "ipv4")
	out.leaf("HealthCheckEnabled", "true")
	out.leaf("HealthCheckProtocol", tg.hc.protocol)
	out.leaf("HealthCheckPort", tg.hc.port)
	if tg.hc.path != "" {
		out.leaf("HealthCheckPath", tg.hc.path)
	}
	out.leaf("HealthCheckIntervalSeconds", strconv.Itoa(tg.hc.interval))
	out.leaf("HealthCheckTimeoutSeconds", strconv.Itoa(tg.hc.timeout))
	out.leaf("HealthyThresholdCount", strconv.Itoa(tg.hc.healthy))
	out.leaf("UnhealthyThresholdCount", strconv.Itoa(tg.hc.unhealthy))
	if tg.hc.matcher != "" {
		out.open("Matcher")
		out.leaf("HttpCode", tg.hc.matcher)
		out.close("Matcher")
	}
	out.list("LoadBalancerArns", s.tgLBs(tg.arn))
	out.close("member")
}

func (s *Server) describeTargetGroups(form url.Values, out *xw) *elbError {
	names, arns, lbArn := members(form, "Names"), members(form, "TargetGroupArns"), form.Get("LoadBalancerArn")
	var sel []string
	switch {
	case len(names) > 0:
		for _, n := range names {
			i := slices.IndexFunc(s.elb.tgOrder, func(a string) bool { return s.elb.tgs[a].name == n })
			if i < 0 {
				return &elbError{400, "TargetGroupNotFound", fmt.Sprintf("Target groups '[%s]' not found", n)}
			}
			sel = append(sel, s.elb.tgOrder[i])
		}
	case len(arns) > 0:
		for _, a := range arns {
			if s.elb.tgs[a] == nil {
				return &elbError{400, "TargetGroupNotFound", "One or more target groups not found"}
			}
			sel = append(sel, a)
		}
	case lbArn != "":
		if s.elb.lbs[lbArn] == nil {
			return &elbError{400, "LoadBalancerNotFound", "One or more load balancers not found"}
		}
		for _, a := range s.elb.tgOrder {
			if slices.Contains(s.tgLBs(a), lbArn) {
				sel = append(sel, a)
			}
		}
	default:
		sel = slices.Clone(s.elb.tgOrder)
	}
	page, next, err := pageOf(form, sel)
	if err != nil {
		return err
	}
	out.open("TargetGroups")
	for _, a := range page {
		s.tgOut(out, s.elb.tgs[a])
	}
	out.close("TargetGroups")
	if next != "" {
		out.leaf("NextMarker", next)
	}
	return nil
}

func (s *Server) modifyTargetGroup(form url.Values, out *xw) *elbError {
	tg := s.elb.tgs[form.Get("TargetGroupArn")]
	if tg == nil {
		return &elbError{400, "TargetGroupNotFound", "One or more target groups not found"}
	}
	hc, err := readHC(form, tg.protocol, &tg.hc)
	if err != nil {
		return err
	}
	tg.hc = hc
	out.open("TargetGroups")
	s.tgOut(out, tg)
	out.close("TargetGroups")
	return nil
}

// tgInUse names what still uses a target group: a listener, or an ECS service (ACTIVE or DRAINING) whose
// loadBalancers name it; "" when nothing does.
func (s *Server) tgInUse(arn string) string {
	for _, la := range s.elb.lisOrder {
		if s.elb.listeners[la].tg == arn {
			return "listener " + la
		}
	}
	for _, c := range s.clusters {
		for _, svc := range c.services {
			if svc.status == "INACTIVE" {
				continue
			}
			for _, lb := range svc.loadBalancers {
				if lb.TargetGroupArn == arn {
					return "ECS service " + svc.arn
				}
			}
		}
	}
	return ""
}

func (s *Server) deleteTargetGroup(form url.Values, out *xw) *elbError {
	arn := form.Get("TargetGroupArn")
	if s.elb.tgs[arn] == nil {
		return nil // deleting a target group that is gone succeeds, as ELBv2 does
	}
	if by := s.tgInUse(arn); by != "" {
		return &elbError{400, "ResourceInUse", fmt.Sprintf("Target group '%s' is currently in use by a %s", arn, by)}
	}
	delete(s.elb.tgs, arn)
	s.elb.tgOrder = slices.DeleteFunc(s.elb.tgOrder, func(a string) bool { return a == arn })
	return nil
}

// ---- listeners

func (s *Server) createListener(form url.Values, out *xw) *elbError {
	lb := s.elb.lbs[form.Get("LoadBalancerArn")]
	if lb == nil {
		return &elbError{400, "LoadBalancerNotFound", "One or more load balancers not found"}
	}
	protocol := form.Get("Protocol")
	if !slices.Contains([]string{"TCP", "UDP", "TCP_UDP", "TLS"}, protocol) {
		return validation("Listener protocol '%s' must be one of TCP, UDP, TCP_UDP, TLS for a network load balancer.", protocol)
	}
	port, err := intParam(form, "Port", 0, 1, 65535)
	if err != nil {
		return err
	}
	if port == 0 {
		return validation("A listener port must be specified.")
	}
	actions := structMembers(form, "DefaultActions")
	if len(actions) != 1 || actions[0]["Type"] != "forward" || actions[0]["TargetGroupArn"] == "" {
		return validation("The emulator serves listeners with one forward action to a target group.")
	}
	tg := s.elb.tgs[actions[0]["TargetGroupArn"]]
	if tg == nil {
		return &elbError{400, "TargetGroupNotFound", "One or more target groups not found"}
	}
	if tg.protocol != protocol {
		return &elbError{400, "IncompatibleProtocols", fmt.Sprintf("The listener protocol '%s' is not compatible with the target group protocol '%s'", protocol, tg.protocol)}
	}
	if lbs := s.tgLBs(tg.arn); len(lbs) > 0 && lbs[0] != lb.arn {
		return &elbError{400, "TargetGroupAssociationLimit", "The following target groups cannot be associated with more than one load balancer: " + tg.arn}
	}
	tags, terr := formTags(form)
	if terr != nil {
		return terr
	}
	for _, la := range s.elb.lisOrder {
		if l := s.elb.listeners[la]; l.lb == lb.arn && l.port == port {
			if l.tg == tg.arn && l.protocol == protocol {
				out.open("Listeners")
				s.listenerOut(out, l)
				out.close("Listeners")
				return nil
			}
			return &elbError{400, "DuplicateListener", "A listener already exists on this port for this load balancer"}
		}
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("listener-%s-%d-%d", lb.arn, port, s.step)))
	l := &listener{arn: strings.Replace(lb.arn, ":loadbalancer/", ":listener/", 1) + "/" + hex.EncodeToString(sum[:8]),
		lb: lb.arn, protocol: protocol, port: port, tg: tg.arn, tags: tags}
	s.elb.listeners[l.arn] = l
	s.elb.lisOrder = append(s.elb.lisOrder, l.arn)
	out.open("Listeners")
	s.listenerOut(out, l)
	out.close("Listeners")
	return nil
}

func (s *Server) listenerOut(out *xw, l *listener) {
	out.open("member")
	out.leaf("ListenerArn", l.arn)
	out.leaf("LoadBalancerArn", l.lb)
	out.leaf("Port", strconv.Itoa(l.port))
	out.leaf("Protocol", l.protocol)
	out.open("DefaultActions")
	out.open("member")
	out.leaf("Type", "forward")
	out.leaf("TargetGroupArn", l.tg)
	out.close("member")
	out.close("DefaultActions")
	out.close("member")
}

func (s *Server) describeListeners(form url.Values, out *xw) *elbError {
	lbArn, arns := form.Get("LoadBalancerArn"), members(form, "ListenerArns")
	var sel []string
	switch {
	case lbArn != "" && len(arns) > 0:
		return validation("A load balancer ARN and listener ARNs cannot be specified at the same time")
	case lbArn != "":
		if s.elb.lbs[lbArn] == nil {
			return &elbError{400, "LoadBalancerNotFound", "One or more load balancers not found"}
		}
		for _, la := range s.elb.lisOrder {
			if s.elb.listeners[la].lb == lbArn {
				sel = append(sel, la)
			}
		}
	case len(arns) > 0:
		for _, a := range arns {
			if s.elb.listeners[a] == nil {
				return &elbError{400, "ListenerNotFound", "One or more listeners not found"}
			}
			sel = append(sel, a)
		}
	default:
		return validation("You must specify either listener ARNs or a load balancer ARN")
	}
	page, next, err := pageOf(form, sel)
	if err != nil {
		return err
	}
	out.open("Listeners")
	for _, a := range page {
		s.listenerOut(out, s.elb.listeners[a])
	}
	out.close("Listeners")
	if next != "" {
		out.leaf("NextMarker", next)
	}
	return nil
}

func (s *Server) deleteListener(form url.Values, out *xw) *elbError {
	arn := form.Get("ListenerArn")
	if s.elb.listeners[arn] == nil {
		return &elbError{400, "ListenerNotFound", "One or more listeners not found"}
	}
	delete(s.elb.listeners, arn)
	s.elb.lisOrder = slices.DeleteFunc(s.elb.lisOrder, func(a string) bool { return a == arn })
	return nil
}

// ---- targets

func formTargets(form url.Values, tg *targetGroup) ([]target, *elbError) {
	var out []target
	for _, m := range structMembers(form, "Targets") {
		t := target{id: m["Id"], port: tg.port}
		if v := m["Port"]; v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 {
				return nil, validation("Target port '%s' must be from 1 to 65535.", v)
			}
			t.port = n
		}
		if tg.targetType == "ip" && net.ParseIP(t.id) == nil {
			return nil, &elbError{400, "InvalidTarget", fmt.Sprintf("The IP address '%s' is not a valid IPv4 address", t.id)}
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, validation("At least one target must be specified.")
	}
	return out, nil
}

func targetKey(id string, port int) string { return net.JoinHostPort(id, strconv.Itoa(port)) }

func (s *Server) registerTargets(form url.Values, out *xw) *elbError {
	tg := s.elb.tgs[form.Get("TargetGroupArn")]
	if tg == nil {
		return &elbError{400, "TargetGroupNotFound", "One or more target groups not found"}
	}
	ts, err := formTargets(form, tg)
	if err != nil {
		return err
	}
	for _, t := range ts {
		s.registerTarget(tg, t.id, t.port, false)
	}
	return nil
}

// registerTarget adds a target in state initial (or brings a draining one back).
func (s *Server) registerTarget(tg *targetGroup, id string, port int, byECS bool) {
	k := targetKey(id, port)
	if old := tg.targets[k]; old != nil && old.state != "draining" {
		return
	}
	tg.targets[k] = &target{id: id, port: port, state: "initial", reason: "Elb.RegistrationInProgress", registeredByECS: byECS}
}

func (s *Server) deregisterTarget(tg *targetGroup, k string) {
	if t := tg.targets[k]; t != nil && t.state != "draining" {
		t.state, t.reason, t.drainUntil = "draining", "Target.DeregistrationInProgress", s.step+s.drainSteps()
	}
}

func (s *Server) drainSteps() int {
	if s.opts.DrainSteps > 0 {
		return s.opts.DrainSteps
	}
	return defaultDrainStep
}

func (s *Server) deregisterTargets(form url.Values, out *xw) *elbError {
	tg := s.elb.tgs[form.Get("TargetGroupArn")]
	if tg == nil {
		return &elbError{400, "TargetGroupNotFound", "One or more target groups not found"}
	}
	ts, err := formTargets(form, tg)
	if err != nil {
		return err
	}
	for _, t := range ts {
		k := targetKey(t.id, t.port)
		if tg.targets[k] == nil {
			return &elbError{400, "InvalidTarget", fmt.Sprintf("The target '%s' is not registered", k)}
		}
		s.deregisterTarget(tg, k)
	}
	return nil
}

func (s *Server) describeTargetHealth(form url.Values, out *xw) *elbError {
	tg := s.elb.tgs[form.Get("TargetGroupArn")]
	if tg == nil {
		return &elbError{400, "TargetGroupNotFound", "One or more target groups not found"}
	}
	keys := slices.Sorted(maps.Keys(tg.targets))
	if sel := structMembers(form, "Targets"); len(sel) > 0 {
		ts, err := formTargets(form, tg)
		if err != nil {
			return err
		}
		keys = nil
		for _, t := range ts {
			keys = append(keys, targetKey(t.id, t.port))
		}
	}
	out.open("TargetHealthDescriptions")
	for _, k := range keys {
		t := tg.targets[k]
		out.open("member")
		host, port, _ := net.SplitHostPort(k)
		out.open("Target")
		out.leaf("Id", host)
		out.leaf("Port", port)
		out.close("Target")
		hp := tg.hc.port
		if hp == "traffic-port" {
			hp = port
		}
		out.leaf("HealthCheckPort", hp)
		out.open("TargetHealth")
		switch {
		case t == nil:
			out.leaf("State", "unavailable")
			out.leaf("Reason", "Target.NotRegistered")
			out.leaf("Description", "Target is not registered to the target group")
		default:
			out.leaf("State", t.state)
			if t.reason != "" {
				out.leaf("Reason", t.reason)
			}
		}
		out.close("TargetHealth")
		out.close("member")
	}
	out.close("TargetHealthDescriptions")
	return nil
}

// ---- tags

// elbTagged returns the tags of an ELBv2 resource by ARN (nil when unknown).
func (s *Server) elbTagged(arn string) *[]Tag {
	if lb := s.elb.lbs[arn]; lb != nil {
		return &lb.tags
	}
	if tg := s.elb.tgs[arn]; tg != nil {
		return &tg.tags
	}
	if l := s.elb.listeners[arn]; l != nil {
		return &l.tags
	}
	return nil
}

func notFoundFor(arn string) *elbError {
	switch {
	case strings.Contains(arn, ":targetgroup/"):
		return &elbError{400, "TargetGroupNotFound", "One or more target groups not found"}
	case strings.Contains(arn, ":listener/"):
		return &elbError{400, "ListenerNotFound", "One or more listeners not found"}
	}
	return &elbError{400, "LoadBalancerNotFound", "One or more load balancers not found"}
}

func (s *Server) addTags(form url.Values, out *xw) *elbError {
	arns := members(form, "ResourceArns")
	tags, err := formTags(form)
	if err != nil {
		return err
	}
	for _, a := range arns {
		if s.elbTagged(a) == nil {
			return notFoundFor(a)
		}
	}
	for _, a := range arns {
		have := s.elbTagged(a)
		merged := slices.Clone(*have)
		for _, nt := range tags {
			if i := slices.IndexFunc(merged, func(t Tag) bool { return t.Key == nt.Key }); i >= 0 {
				merged[i] = nt
			} else {
				merged = append(merged, nt)
			}
		}
		if len(merged) > maxTagsELB {
			return &elbError{400, "TooManyTags", "The quota for the number of tags that can be assigned to a resource has been reached."}
		}
		*have = merged
	}
	return nil
}

func (s *Server) removeTags(form url.Values, out *xw) *elbError {
	arns, keys := members(form, "ResourceArns"), members(form, "TagKeys")
	for _, a := range arns {
		have := s.elbTagged(a)
		if have == nil {
			return notFoundFor(a)
		}
		*have = slices.DeleteFunc(slices.Clone(*have), func(t Tag) bool { return slices.Contains(keys, t.Key) })
	}
	return nil
}

func (s *Server) describeTags(form url.Values, out *xw) *elbError {
	arns := members(form, "ResourceArns")
	if len(arns) == 0 || len(arns) > maxDescribeTags {
		return validation("Between 1 and 20 resource ARNs must be specified.")
	}
	for _, a := range arns {
		if s.elbTagged(a) == nil {
			return notFoundFor(a)
		}
	}
	out.open("TagDescriptions")
	for _, a := range arns {
		out.open("member")
		out.leaf("ResourceArn", a)
		out.open("Tags")
		for _, t := range *s.elbTagged(a) {
			out.open("member")
			out.leaf("Key", t.Key)
			out.leaf("Value", t.Value)
			out.close("member")
		}
		out.close("Tags")
		out.close("member")
	}
	out.close("TagDescriptions")
	return nil
}

// ---- the simulation: ECS registers its tasks, the load balancer checks them

// syncTargets registers each RUNNING task of a service with load balancers in their target groups and
// deregisters (drains) the others ECS registered, then runs one round of health checks in every group: a group
// no listener forwards to checks nothing (its targets are unused, as ELBv2 reports them); a draining target is
// removed once its deregistration delay (Options.DrainSteps) has passed.
func (s *Server) syncTargets() {
	byIP := map[string]*task{}
	want := map[string]map[string]bool{} // tg ARN → target keys ECS wants registered
	for _, cn := range slices.Sorted(maps.Keys(s.clusters)) {
		c := s.clusters[cn]
		for _, t := range c.tasks {
			if t.lastStatus == "RUNNING" && t.desiredStatus == "RUNNING" {
				byIP[t.ip] = t
			}
			svc := c.services[t.service]
			if svc == nil || t.lastStatus != "RUNNING" || t.desiredStatus != "RUNNING" {
				continue
			}
			for _, lb := range svc.loadBalancers {
				if want[lb.TargetGroupArn] == nil {
					want[lb.TargetGroupArn] = map[string]bool{}
				}
				want[lb.TargetGroupArn][targetKey(t.ip, lb.ContainerPort)] = true
			}
		}
	}
	for _, arn := range s.elb.tgOrder {
		tg := s.elb.tgs[arn]
		for k := range want[arn] {
			host, port, _ := net.SplitHostPort(k)
			n, _ := strconv.Atoi(port)
			s.registerTarget(tg, host, n, true)
		}
		attached := len(s.tgLBs(arn)) > 0
		for _, k := range slices.Sorted(maps.Keys(tg.targets)) {
			t := tg.targets[k]
			if t.registeredByECS && !want[arn][k] {
				s.deregisterTarget(tg, k)
			}
			if t.state == "draining" {
				if s.step >= t.drainUntil {
					delete(tg.targets, k)
				}
				continue
			}
			if !attached {
				t.state, t.reason, t.ok, t.fail = "unused", "Target.NotInUse", 0, 0
				continue
			}
			if t.state == "unused" {
				t.state, t.reason = "initial", "Elb.InitialHealthChecking"
			}
			if s.probe(tg, t, byIP[t.id]) {
				t.ok, t.fail = t.ok+1, 0
			} else {
				t.ok, t.fail = 0, t.fail+1
			}
			switch {
			case t.ok >= tg.hc.healthy:
				t.state, t.reason = "healthy", ""
			case t.fail >= tg.hc.unhealthy:
				t.state, t.reason = "unhealthy", "Target.FailedHealthChecks"
				if tg.hc.protocol != "TCP" {
					t.reason = "Target.ResponseCodeMismatch"
				}
			case t.state == "initial":
				t.reason = "Elb.InitialHealthChecking"
			}
		}
	}
}

// probe runs one health check of t: the hook's answer, else whether a running task has the address.
func (s *Server) probe(tg *targetGroup, t *target, tk *task) bool {
	port := t.port
	if tg.hc.port != "traffic-port" {
		port, _ = strconv.Atoi(tg.hc.port)
	}
	if s.elb.health == nil {
		return tk != nil
	}
	p := HealthProbe{TargetGroup: tg.name, Protocol: tg.hc.protocol, Path: tg.hc.path, Port: port, IP: t.id}
	if tk != nil {
		if td := s.taskDef(tk.taskDef); td != nil {
			p.Image = td.containers[0].Image
		}
		p.Env = maps.Clone(tk.env)
	}
	return s.elb.health(p)
}

// targetsHealthy tells whether a task of a service with load balancers is healthy in every target group the
// service names; the second result is the ARN of a group that finds it unhealthy ("" when none does).
func (s *Server) targetsHealthy(svc *service, t *task) (bool, string) {
	all := true
	for _, lb := range svc.loadBalancers {
		tg := s.elb.tgs[lb.TargetGroupArn]
		if tg == nil {
			all = false
			continue
		}
		tgt := tg.targets[targetKey(t.ip, lb.ContainerPort)]
		switch {
		case tgt == nil || tgt.state != "healthy":
			all = false
			if tgt != nil && tgt.state == "unhealthy" {
				return false, tg.arn
			}
		}
	}
	return all, ""
}

// ServiceLoadBalancer is one entry of an ECS service's loadBalancers.
type ServiceLoadBalancer struct {
	TargetGroupArn   string `json:"targetGroupArn,omitempty"`
	LoadBalancerName string `json:"loadBalancerName,omitempty"`
	ContainerName    string `json:"containerName"`
	ContainerPort    int    `json:"containerPort"`
}

// checkLoadBalancers validates a service's loadBalancers as ECS does against ELBv2: each target group exists, is
// of target type ip (awsvpc), is attached to a load balancer, and the container and port are in the task
// definition.
func (s *Server) checkLoadBalancers(lbs []ServiceLoadBalancer, td *taskDef) *apiError {
	for _, lb := range lbs {
		tg := s.elb.tgs[lb.TargetGroupArn]
		switch {
		case lb.TargetGroupArn == "":
			return invalidParam("targetGroupArn must be specified for a load balancer of an awsvpc service.")
		case tg == nil:
			return invalidParam("The target group with targetGroupArn %s does not exist.", lb.TargetGroupArn)
		case tg.targetType != "ip":
			return invalidParam("The provided target group %s has target type %s, which is incompatible with the awsvpc network mode specified in the task definition.", lb.TargetGroupArn, tg.targetType)
		case len(s.tgLBs(tg.arn)) == 0:
			return invalidParam("The target group with targetGroupArn %s does not have an associated load balancer.", lb.TargetGroupArn)
		}
		if td != nil {
			found := false
			for _, c := range td.containers {
				if c.Name == lb.ContainerName {
					found = slices.Contains(c.ports, lb.ContainerPort)
					if !found {
						return invalidParam("The container %s did not have a container port %d defined.", lb.ContainerName, lb.ContainerPort)
					}
				}
			}
			if !found {
				return invalidParam("The container %s does not exist in the task definition.", lb.ContainerName)
			}
		}
	}
	return nil
}

// vpc is the VPC of every subnet.
func (s *Server) vpc() string {
	if s.opts.VpcID != "" {
		return s.opts.VpcID
	}
	return DefaultVpcID
}

// LoadBalancerDNS returns the DNS name of the named load balancer ("" when there is none).
func (s *Server) LoadBalancerDNS(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, lb := range s.elb.lbs {
		if lb.name == name {
			return lb.dns
		}
	}
	return ""
}

// TargetGroupHealth returns the named target group's health check as the load balancer runs it: protocol, path
// (HTTP), port ("traffic-port" or a number), interval, timeout, healthy and unhealthy thresholds; ok is false for
// an unknown group.
func (s *Server) TargetGroupHealth(name string) (protocol, path, port string, interval, timeout, healthy, unhealthy int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tg := range s.elb.tgs {
		if tg.name == name {
			h := tg.hc
			return h.protocol, h.path, h.port, h.interval, h.timeout, h.healthy, h.unhealthy, true
		}
	}
	return "", "", "", 0, 0, 0, 0, false
}

// ServingEnvironment is TaskEnvironment as the load balancer sees it: for a service with load balancers, only
// the tasks every target group finds healthy (those it routes to; an unhealthy or starting task gets no
// traffic); for another service, every running task.
func (s *Server) ServingEnvironment(clusterName, serviceName string) []map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clusters[clusterName]
	if c == nil || c.services[serviceName] == nil {
		return nil
	}
	svc := c.services[serviceName]
	var ts []*task
	for _, t := range c.tasks {
		if t.service != serviceName || t.lastStatus != "RUNNING" || t.desiredStatus != "RUNNING" {
			continue
		}
		if ok, _ := s.targetsHealthy(svc, t); ok || len(svc.loadBalancers) == 0 {
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].arn < ts[j].arn })
	out := make([]map[string]string, len(ts))
	for i, t := range ts {
		out[i] = maps.Clone(t.env)
	}
	return out
}
