package computeemu

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The load-balancing side of Compute Engine: health checks (global), firewall rules (global), regional backend
// services, regional forwarding rules and regional addresses. Each is kept as the SDK's message and answered as
// GCE answers: insert, get, list (filter), patch (a JSON merge of the top-level fields given) and delete, through
// operations, with alreadyExists, notFound and resourceInUseByAnotherResource (a health check used by a backend
// service or a group's autohealing policy, a backend service used by a forwarding rule, an address used by a
// forwarding rule).

// lbKinds are the collections served, by path segment: their scope and the kind of their messages.
var lbKinds = map[string]struct {
	global bool
	kind   string
	new    func() proto.Message
}{
	"healthChecks":    {true, "compute#healthCheck", func() proto.Message { return &computepb.HealthCheck{} }},
	"firewalls":       {true, "compute#firewall", func() proto.Message { return &computepb.Firewall{} }},
	"backendServices": {false, "compute#backendService", func() proto.Message { return &computepb.BackendService{} }},
	"forwardingRules": {false, "compute#forwardingRule", func() proto.Message { return &computepb.ForwardingRule{} }},
	"addresses":       {false, "compute#address", func() proto.Message { return &computepb.Address{} }},
}

// HealthProbe is what a health check of an instance asks: the group and instance, the template the instance runs,
// and the health check (its type, port and request path).
type HealthProbe struct {
	Group, Instance string
	Template        *computepb.InstanceTemplate
	Check           *computepb.HealthCheck
}

// SetHealth sets the function deciding whether a probe of an instance passes (nil: every probe passes). It runs
// under the server's lock and must not call the Server.
func (s *Server) SetHealth(f func(HealthProbe) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.health = f
}

// SetQuota limits how many resources of a collection ("addresses", "forwardingRules", "backendServices",
// "healthChecks", "firewalls") may exist; an insert beyond it fails its operation with QUOTA_EXCEEDED, as GCE's
// do. A negative n removes the limit.
func (s *Server) SetQuota(collection string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 0 {
		delete(s.quota, collection)
		return
	}
	s.quota[collection] = n
}

// Resources lists the names of a collection's resources ("healthChecks", "backendServices", ...), sorted.
func (s *Server) Resources(collection string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.lb[collection] {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Resource returns a copy of one resource of a collection, nil when it does not exist.
func (s *Server) Resource(collection, name string) proto.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.lb[collection][name]; m != nil {
		return proto.Clone(m)
	}
	return nil
}

// DeleteResource deletes a resource out of band (whatever uses it), as a test's hand would.
func (s *Server) DeleteResource(collection, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.lb[collection], name)
}

func (s *Server) lbLink(coll, name string) string {
	if lbKinds[coll].global {
		return fmt.Sprintf("%s/compute/v1/projects/%s/global/%s/%s", s.hs.URL, s.opts.Project, coll, name)
	}
	return fmt.Sprintf("%s/%s/%s", s.regionLink(), coll, name)
}

// refName returns the collection and name a resource reference (a URL or a partial path) names.
func refName(ref string) (coll, name string) {
	parts := strings.Split(strings.TrimSuffix(ref, "/"), "/")
	if len(parts) < 2 {
		return "", ref
	}
	return parts[len(parts)-2], parts[len(parts)-1]
}

type mutateFunc func(kind, target string, prepare func() (func() *apiError, *apiError)) (proto.Message, *apiError)

// lbRoute serves the load-balancing collections; ok is false for other collections.
func (s *Server) lbRoute(method, coll, name, verb string, global bool, q map[string][]string, body []byte, mutate mutateFunc) (proto.Message, *apiError, bool) {
	k, known := lbKinds[coll]
	if !known || k.global != global {
		return nil, nil, false
	}
	link := s.lbLink(coll, name)
	switch {
	case name == "" && method == http.MethodGet:
		f, e := parseFilter(first(q["filter"]))
		if e != nil {
			return nil, e, true
		}
		return s.lbList(coll, f), nil, true
	case name == "" && method == http.MethodPost:
		m := k.new()
		if e := decode(body, m); e != nil {
			return nil, e, true
		}
		n := nameOf(m)
		r, e := mutate("insert", s.lbLink(coll, n), func() (func() *apiError, *apiError) { return s.lbInsert(coll, m) })
		return r, e, true
	case verb == "" && method == http.MethodGet:
		m := s.lb[coll][name]
		if m == nil {
			return nil, notFound(link), true
		}
		return s.lbView(coll, m), nil, true
	case verb == "" && method == http.MethodPatch:
		patch := k.new()
		if e := decode(body, patch); e != nil {
			return nil, e, true
		}
		r, e := mutate("patch", link, func() (func() *apiError, *apiError) { return s.lbPatch(coll, name, patch) })
		return r, e, true
	case verb == "" && method == http.MethodPut && coll == "healthChecks":
		m := k.new()
		if e := decode(body, m); e != nil {
			return nil, e, true
		}
		r, e := mutate("update", link, func() (func() *apiError, *apiError) { return s.lbUpdate(coll, name, m) })
		return r, e, true
	case verb == "" && method == http.MethodDelete:
		r, e := mutate("delete", link, func() (func() *apiError, *apiError) { return s.lbDelete(coll, name) })
		return r, e, true
	case coll == "backendServices" && verb == "getHealth" && method == http.MethodPost:
		ref := &computepb.ResourceGroupReference{}
		if e := decode(body, ref); e != nil {
			return nil, e, true
		}
		r, e := s.backendHealth(name, ref.GetGroup())
		return r, e, true
	}
	return nil, errorf(404, "notFound", "The requested URL was not found on this server."), true
}

func nameOf(m proto.Message) string {
	fd := m.ProtoReflect().Descriptor().Fields().ByName("name")
	return m.ProtoReflect().Get(fd).String()
}

func (s *Server) lbList(coll string, f filter) proto.Message {
	var names []string
	for n := range s.lb[coll] {
		names = append(names, n)
	}
	sort.Strings(names)
	var items []proto.Message
	for _, n := range names {
		if v := s.lbView(coll, s.lb[coll][n]); f.match(v) {
			items = append(items, v)
		}
	}
	id := proto.String("projects/" + s.opts.Project + "/" + coll)
	switch coll {
	case "healthChecks":
		out := &computepb.HealthCheckList{Kind: proto.String("compute#healthCheckList"), Id: id}
		for _, m := range items {
			out.Items = append(out.Items, m.(*computepb.HealthCheck))
		}
		return out
	case "firewalls":
		out := &computepb.FirewallList{Kind: proto.String("compute#firewallList"), Id: id}
		for _, m := range items {
			out.Items = append(out.Items, m.(*computepb.Firewall))
		}
		return out
	case "backendServices":
		out := &computepb.BackendServiceList{Kind: proto.String("compute#backendServiceList"), Id: id}
		for _, m := range items {
			out.Items = append(out.Items, m.(*computepb.BackendService))
		}
		return out
	case "forwardingRules":
		out := &computepb.ForwardingRuleList{Kind: proto.String("compute#forwardingRuleList"), Id: id}
		for _, m := range items {
			out.Items = append(out.Items, m.(*computepb.ForwardingRule))
		}
		return out
	}
	out := &computepb.AddressList{Kind: proto.String("compute#addressList"), Id: id}
	for _, m := range items {
		out.Items = append(out.Items, m.(*computepb.Address))
	}
	return out
}

// lbView is a resource as get answers it: an address's status and users from the forwarding rules using it.
func (s *Server) lbView(coll string, m proto.Message) proto.Message {
	v := proto.Clone(m)
	if a, ok := v.(*computepb.Address); ok {
		a.Status, a.Users = proto.String("RESERVED"), nil
		for _, n := range sortedNames(s.lb["forwardingRules"]) {
			fr := s.lb["forwardingRules"][n].(*computepb.ForwardingRule)
			if fr.GetIPAddress() == a.GetAddress() || fr.GetIPAddress() == a.GetSelfLink() {
				a.Status = proto.String("IN_USE")
				a.Users = append(a.Users, fr.GetSelfLink())
			}
		}
	}
	return v
}

func sortedNames(m map[string]proto.Message) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

var ipRangeRE = regexp.MustCompile(`^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$`)

// lbCheck validates a resource as GCE does for the fields berth sends.
func (s *Server) lbCheck(coll string, m proto.Message) *apiError {
	switch m := m.(type) {
	case *computepb.HealthCheck:
		switch m.GetType() {
		case "HTTP":
			if m.HttpHealthCheck == nil {
				return errorf(400, "required", "Required field 'resource.httpHealthCheck' not specified")
			}
			if p := m.GetHttpHealthCheck().GetRequestPath(); p != "" && !strings.HasPrefix(p, "/") {
				return errorf(400, "invalid", "Invalid value for field 'resource.httpHealthCheck.requestPath': '%s'. Must start with '/'.", p)
			}
			if e := checkPort("resource.httpHealthCheck.port", m.GetHttpHealthCheck().GetPort()); e != nil {
				return e
			}
		case "TCP":
			if m.TcpHealthCheck == nil {
				return errorf(400, "required", "Required field 'resource.tcpHealthCheck' not specified")
			}
			if e := checkPort("resource.tcpHealthCheck.port", m.GetTcpHealthCheck().GetPort()); e != nil {
				return e
			}
		default:
			return errorf(400, "invalid", "Invalid value for field 'resource.type': '%s'. Must be one of [HTTP, HTTPS, HTTP2, TCP, SSL, GRPC].", m.GetType())
		}
		if iv := m.GetCheckIntervalSec(); m.CheckIntervalSec != nil && (iv < 1 || iv > 300) {
			return errorf(400, "invalid", "Invalid value for field 'resource.checkIntervalSec': '%d'. Must be in the range [1, 300].", iv)
		}
		if m.TimeoutSec != nil && m.CheckIntervalSec != nil && m.GetTimeoutSec() > m.GetCheckIntervalSec() {
			return errorf(400, "invalid", "Invalid value for field 'resource.timeoutSec': '%d'. TimeoutSec should be less than checkIntervalSec.", m.GetTimeoutSec())
		}
		if u := m.GetUnhealthyThreshold(); m.UnhealthyThreshold != nil && (u < 1 || u > 10) {
			return errorf(400, "invalid", "Invalid value for field 'resource.unhealthyThreshold': '%d'. Must be in the range [1, 10].", u)
		}
	case *computepb.Firewall:
		if len(m.GetAllowed()) == 0 && len(m.GetDenied()) == 0 {
			return errorf(400, "required", "Required field 'resource.allowed' not specified")
		}
		for i, a := range m.GetAllowed() {
			if pr := a.GetIPProtocol(); pr != "tcp" && pr != "udp" && pr != "icmp" && pr != "all" {
				return errorf(400, "invalid", "Invalid value for field 'resource.allowed[%d].IPProtocol': '%s'.", i, pr)
			}
		}
		for i, r := range m.GetSourceRanges() {
			if !ipRangeRE.MatchString(r) {
				return errorf(400, "invalid", "Invalid value for field 'resource.sourceRanges[%d]': '%s'. Must be a CIDR address range that is contained in the network.", i, r)
			}
		}
		if d := m.GetDirection(); d != "" && d != "INGRESS" && d != "EGRESS" {
			return errorf(400, "invalid", "Invalid value for field 'resource.direction': '%s'.", d)
		}
	case *computepb.BackendService:
		if sch := m.GetLoadBalancingScheme(); sch != "EXTERNAL" && sch != "INTERNAL" && sch != "EXTERNAL_MANAGED" && sch != "INTERNAL_MANAGED" {
			return errorf(400, "invalid", "Invalid value for field 'resource.loadBalancingScheme': '%s'.", sch)
		}
		if pr := m.GetProtocol(); m.GetLoadBalancingScheme() == "EXTERNAL" && pr != "TCP" && pr != "UDP" && pr != "UNSPECIFIED" {
			return errorf(400, "invalid", "Invalid value for field 'resource.protocol': '%s'. Regional external backend services support TCP, UDP and UNSPECIFIED.", pr)
		}
		if len(m.GetHealthChecks()) != 1 {
			return errorf(400, "invalid", "Invalid value for field 'resource.healthChecks': ''. A backend service of an external passthrough Network Load Balancer must have exactly one health check.")
		}
		if _, n := refName(m.GetHealthChecks()[0]); s.lb["healthChecks"][n] == nil {
			return notFound(s.lbLink("healthChecks", n))
		}
		for i, b := range m.GetBackends() {
			_, n := refName(b.GetGroup())
			if s.groups[n] == nil {
				return errorf(400, "invalid", "Invalid value for field 'resource.backends[%d].group': '%s'. The resource was not found.", i, b.GetGroup())
			}
			if bm := b.GetBalancingMode(); bm != "" && bm != "CONNECTION" {
				return errorf(400, "invalid", "Invalid value for field 'resource.backends[%d].balancingMode': '%s'. Balancing mode must be CONNECTION for an EXTERNAL backend service with protocol TCP/UDP.", i, bm)
			}
		}
	case *computepb.ForwardingRule:
		pr := m.GetIPProtocol()
		if pr != "TCP" && pr != "UDP" && pr != "L3_DEFAULT" {
			return errorf(400, "invalid", "Invalid value for field 'resource.IPProtocol': '%s'.", pr)
		}
		_, bn := refName(m.GetBackendService())
		bs, _ := s.lb["backendServices"][bn].(*computepb.BackendService)
		if bs == nil {
			return notFound(s.lbLink("backendServices", bn))
		}
		if bs.GetProtocol() != pr && !(bs.GetProtocol() == "UNSPECIFIED" && pr == "L3_DEFAULT") {
			return errorf(400, "invalid", "Invalid value for field 'resource.IPProtocol': '%s'. The forwarding rule's protocol must match its backend service's (%s).", pr, bs.GetProtocol())
		}
		if len(m.GetPorts()) > 5 {
			return errorf(400, "invalid", "Invalid value for field 'resource.ports': ''. At most 5 ports may be specified.")
		}
		if len(m.GetPorts()) > 0 && (m.GetAllPorts() || m.GetPortRange() != "") {
			return errorf(400, "invalid", "Invalid value for field 'resource.ports': ''. Only one of ports, portRange and allPorts may be set.")
		}
		if ip := m.GetIPAddress(); ip != "" && s.addressByIP(ip) == nil {
			return errorf(400, "invalid", "Invalid value for field 'resource.IPAddress': '%s'. Specified IP address is not reserved in region %s.", ip, s.opts.Region)
		}
	case *computepb.Address:
		if t := m.GetAddressType(); t != "" && t != "EXTERNAL" && t != "INTERNAL" {
			return errorf(400, "invalid", "Invalid value for field 'resource.addressType': '%s'.", t)
		}
	}
	if ls := labelsOf(m); ls != nil {
		for k, v := range ls {
			if !labelK.MatchString(k) || !labelV.MatchString(v) {
				return errorf(400, "invalid", "Invalid value for field 'resource.labels': '%s'. Label keys and values can only contain lowercase letters, numeric characters, underscores and dashes.", k)
			}
		}
	}
	return nil
}

func checkPort(field string, p int32) *apiError {
	if p < 1 || p > 65535 {
		return errorf(400, "invalid", "Invalid value for field '%s': '%d'. Must be in the range [1, 65535].", field, p)
	}
	return nil
}

func labelsOf(m proto.Message) map[string]string {
	switch m := m.(type) {
	case *computepb.Address:
		return m.GetLabels()
	case *computepb.ForwardingRule:
		return m.GetLabels()
	}
	return nil
}

// addressByIP is the regional address whose IP, name or link ref is.
func (s *Server) addressByIP(ref string) *computepb.Address {
	for _, n := range sortedNames(s.lb["addresses"]) {
		a := s.lb["addresses"][n].(*computepb.Address)
		if a.GetAddress() == ref || a.GetSelfLink() == ref || strings.HasSuffix(ref, "/addresses/"+n) {
			return a
		}
	}
	return nil
}

func (s *Server) lbInsert(coll string, m proto.Message) (func() *apiError, *apiError) {
	name := nameOf(m)
	switch {
	case !nameRE.MatchString(name):
		return nil, errorf(400, "invalid", "Invalid value for field 'resource.name': '%s'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'", name)
	case s.lb[coll][name] != nil:
		return nil, errorf(409, "alreadyExists", "The resource '%s' already exists", strings.TrimPrefix(s.lbLink(coll, name), s.hs.URL+"/compute/v1/"))
	}
	if e := s.lbCheck(coll, m); e != nil {
		return nil, e
	}
	return func() *apiError {
		if s.lb[coll][name] != nil {
			return errorf(409, "alreadyExists", "The resource '%s' already exists", strings.TrimPrefix(s.lbLink(coll, name), s.hs.URL+"/compute/v1/"))
		}
		if q, ok := s.quota[coll]; ok && len(s.lb[coll]) >= q {
			return errorf(403, "QUOTA_EXCEEDED", "Quota '%s' exceeded.  Limit: %d.0 in region %s.", quotaMetric(coll), q, s.opts.Region)
		}
		s.finishLB(coll, m)
		if s.lb[coll] == nil {
			s.lb[coll] = map[string]proto.Message{}
		}
		s.lb[coll][name] = m
		return nil
	}, nil
}

func quotaMetric(coll string) string {
	switch coll {
	case "addresses":
		return "STATIC_ADDRESSES"
	case "forwardingRules":
		return "FORWARDING_RULES"
	case "backendServices":
		return "REGION_BACKEND_SERVICES"
	case "healthChecks":
		return "HEALTH_CHECKS"
	}
	return "FIREWALLS"
}

// finishLB fills in what GCE sets on insert: id, kind, selfLink, creationTimestamp, region; an address's IP, a
// firewall's defaults, a forwarding rule's address when none was given.
func (s *Server) finishLB(coll string, m proto.Message) {
	s.nextID++
	r := m.ProtoReflect()
	set := func(field string, v protoreflect.Value) {
		if fd := r.Descriptor().Fields().ByName(protoreflect.Name(field)); fd != nil {
			r.Set(fd, v)
		}
	}
	set("id", protoreflect.ValueOfUint64(s.nextID))
	set("kind", protoreflect.ValueOfString(lbKinds[coll].kind))
	set("self_link", protoreflect.ValueOfString(s.lbLink(coll, nameOf(m))))
	set("creation_timestamp", protoreflect.ValueOfString(time.Now().UTC().Format(time.RFC3339)))
	if !lbKinds[coll].global {
		set("region", protoreflect.ValueOfString(s.regionLink()))
	}
	switch m := m.(type) {
	case *computepb.Address:
		s.ips++
		m.Address = proto.String(fmt.Sprintf("34.140.%d.%d", s.ips/250, s.ips%250+1))
		if m.AddressType == nil {
			m.AddressType = proto.String("EXTERNAL")
		}
		if m.NetworkTier == nil {
			m.NetworkTier = proto.String("PREMIUM")
		}
		m.LabelFingerprint = proto.String(strconv.FormatUint(s.nextID, 36))
	case *computepb.Firewall:
		if m.Direction == nil {
			m.Direction = proto.String("INGRESS")
		}
		if m.Priority == nil {
			m.Priority = proto.Int32(1000)
		}
		if m.Network == nil {
			m.Network = proto.String(fmt.Sprintf("%s/compute/v1/projects/%s/global/networks/default", s.hs.URL, s.opts.Project))
		}
	case *computepb.ForwardingRule:
		if m.GetIPAddress() == "" {
			s.ips++
			m.IPAddress = proto.String(fmt.Sprintf("35.187.%d.%d", s.ips/250, s.ips%250+1))
		} else if a := s.addressByIP(m.GetIPAddress()); a != nil {
			m.IPAddress = proto.String(a.GetAddress())
		}
		if m.NetworkTier == nil {
			m.NetworkTier = proto.String("PREMIUM")
		}
		m.LabelFingerprint = proto.String(strconv.FormatUint(s.nextID, 36))
		m.Fingerprint = proto.String(strconv.FormatUint(s.nextID, 36))
	case *computepb.BackendService:
		m.Fingerprint = proto.String(strconv.FormatUint(s.nextID, 36))
	case *computepb.HealthCheck:
		if m.CheckIntervalSec == nil {
			m.CheckIntervalSec = proto.Int32(5)
		}
		if m.TimeoutSec == nil {
			m.TimeoutSec = proto.Int32(5)
		}
		if m.HealthyThreshold == nil {
			m.HealthyThreshold = proto.Int32(2)
		}
		if m.UnhealthyThreshold == nil {
			m.UnhealthyThreshold = proto.Int32(2)
		}
	}
}

// lbPatch merges the top-level fields patch sets into the resource (output-only fields are ignored).
func (s *Server) lbPatch(coll, name string, patch proto.Message) (func() *apiError, *apiError) {
	cur := s.lb[coll][name]
	if cur == nil {
		return nil, notFound(s.lbLink(coll, name))
	}
	if n := nameOf(patch); n != "" && n != name {
		return nil, errorf(400, "invalid", "Invalid value for field 'resource.name': '%s'. The name cannot be changed.", n)
	}
	merged := proto.Clone(cur)
	mr := merged.ProtoReflect()
	patch.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch fd.Name() {
		case "id", "kind", "self_link", "creation_timestamp", "region", "address", "fingerprint", "label_fingerprint":
			return true
		}
		mr.Set(fd, v)
		return true
	})
	if e := s.lbCheck(coll, merged); e != nil {
		return nil, e
	}
	return func() *apiError {
		if s.lb[coll][name] == nil {
			return notFound(s.lbLink(coll, name))
		}
		s.nextID++
		if fd := mr.Descriptor().Fields().ByName("fingerprint"); fd != nil {
			mr.Set(fd, protoreflect.ValueOfString(strconv.FormatUint(s.nextID, 36)))
		}
		s.lb[coll][name] = merged
		return nil
	}, nil
}

// lbUpdate replaces a resource whole (PUT), keeping what GCE sets itself (id, selfLink, creationTimestamp).
func (s *Server) lbUpdate(coll, name string, m proto.Message) (func() *apiError, *apiError) {
	cur := s.lb[coll][name]
	if cur == nil {
		return nil, notFound(s.lbLink(coll, name))
	}
	if n := nameOf(m); n != name {
		return nil, errorf(400, "invalid", "Invalid value for field 'resource.name': '%s'. The name cannot be changed.", n)
	}
	if e := s.lbCheck(coll, m); e != nil {
		return nil, e
	}
	return func() *apiError {
		old := s.lb[coll][name]
		if old == nil {
			return notFound(s.lbLink(coll, name))
		}
		s.finishLB(coll, m)
		or, mr := old.ProtoReflect(), m.ProtoReflect()
		for _, f := range []protoreflect.Name{"id", "creation_timestamp"} {
			fd := mr.Descriptor().Fields().ByName(f)
			mr.Set(fd, or.Get(fd))
		}
		s.lb[coll][name] = m
		return nil
	}, nil
}

// lbDelete refuses to delete what another resource uses, as GCE does.
func (s *Server) lbDelete(coll, name string) (func() *apiError, *apiError) {
	m := s.lb[coll][name]
	if m == nil {
		return nil, notFound(s.lbLink(coll, name))
	}
	if user := s.userOf(coll, name, m); user != "" {
		return nil, errorf(400, "resourceInUseByAnotherResource", "The %s resource '%s' is already being used by '%s'",
			strings.TrimSuffix(strings.ToLower(coll[:1])+coll[1:], "s"), strings.TrimPrefix(s.lbLink(coll, name), s.hs.URL+"/compute/v1/"), strings.TrimPrefix(user, s.hs.URL+"/compute/v1/"))
	}
	return func() *apiError { delete(s.lb[coll], name); return nil }, nil
}

// userOf names a resource using the named one ("" for none).
func (s *Server) userOf(coll, name string, m proto.Message) string {
	switch coll {
	case "healthChecks":
		for _, n := range sortedNames(s.lb["backendServices"]) {
			for _, hc := range s.lb["backendServices"][n].(*computepb.BackendService).GetHealthChecks() {
				if _, hn := refName(hc); hn == name {
					return s.lbLink("backendServices", n)
				}
			}
		}
		for _, gn := range sortedGroups(s.groups) {
			for _, ah := range s.groups[gn].pb.GetAutoHealingPolicies() {
				if _, hn := refName(ah.GetHealthCheck()); hn == name {
					return s.groupLink(gn)
				}
			}
		}
	case "backendServices":
		for _, n := range sortedNames(s.lb["forwardingRules"]) {
			if _, bn := refName(s.lb["forwardingRules"][n].(*computepb.ForwardingRule).GetBackendService()); bn == name {
				return s.lbLink("forwardingRules", n)
			}
		}
	case "addresses":
		a := m.(*computepb.Address)
		for _, n := range sortedNames(s.lb["forwardingRules"]) {
			if s.lb["forwardingRules"][n].(*computepb.ForwardingRule).GetIPAddress() == a.GetAddress() {
				return s.lbLink("forwardingRules", n)
			}
		}
	}
	return ""
}

func sortedGroups(m map[string]*group) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// backendHealth is regionBackendServices.getHealth for one instance group: each instance's health as the backend
// service's health check sees it.
func (s *Server) backendHealth(name, groupRef string) (proto.Message, *apiError) {
	bs, _ := s.lb["backendServices"][name].(*computepb.BackendService)
	if bs == nil {
		return nil, notFound(s.lbLink("backendServices", name))
	}
	_, gn := refName(groupRef)
	g := s.groups[gn]
	found := false
	for _, b := range bs.GetBackends() {
		if _, n := refName(b.GetGroup()); n == gn {
			found = true
		}
	}
	if g == nil || !found {
		return nil, errorf(400, "invalid", "Invalid value for field 'resourceGroupReference.group': '%s'. Group is not a backend of the backend service.", groupRef)
	}
	var hc *computepb.HealthCheck
	if len(bs.GetHealthChecks()) > 0 {
		_, hn := refName(bs.GetHealthChecks()[0])
		hc, _ = s.lb["healthChecks"][hn].(*computepb.HealthCheck)
	}
	out := &computepb.BackendServiceGroupHealth{Kind: proto.String("compute#backendServiceGroupHealth")}
	ins := append([]*instance(nil), g.instances...)
	sort.Slice(ins, func(a, b int) bool { return ins[a].name < ins[b].name })
	for _, in := range ins {
		if in.status != "RUNNING" || in.action == "DELETING" { // a deleting instance is drained from the backend
			continue
		}
		state := "UNHEALTHY"
		if hc != nil && s.probe(g, in, hc) {
			state = "HEALTHY"
		}
		out.HealthStatus = append(out.HealthStatus, &computepb.HealthStatus{Instance: proto.String(s.zoneLink(in.zone) + "/instances/" + in.name),
			IpAddress: proto.String(in.networkIP), HealthState: proto.String(state)})
	}
	return out, nil
}

// probe runs the health function on one instance.
func (s *Server) probe(g *group, in *instance, hc *computepb.HealthCheck) bool {
	if s.health == nil {
		return true
	}
	var tp *computepb.InstanceTemplate
	if t := s.templates[in.template]; t != nil {
		tp = proto.Clone(t.pb).(*computepb.InstanceTemplate)
	}
	return s.health(HealthProbe{Group: g.pb.GetName(), Instance: in.name, Template: tp, Check: proto.Clone(hc).(*computepb.HealthCheck)})
}

// autohealCheck is the health check of g's autohealing policy (nil when it has none, or it is gone).
func (s *Server) autohealCheck(g *group) *computepb.HealthCheck {
	for _, ah := range g.pb.GetAutoHealingPolicies() {
		_, hn := refName(ah.GetHealthCheck())
		if hc, _ := s.lb["healthChecks"][hn].(*computepb.HealthCheck); hc != nil {
			return hc
		}
	}
	return nil
}

// checkAutoHealing validates a group's autohealing policies: at most one, its health check existing, its initial
// delay within [0, 3600].
func (s *Server) checkAutoHealing(g *computepb.InstanceGroupManager) *apiError {
	ahs := g.GetAutoHealingPolicies()
	if len(ahs) > 1 {
		return errorf(400, "invalid", "Invalid value for field 'resource.autoHealingPolicies': ''. At most one autohealing policy may be specified.")
	}
	for _, ah := range ahs {
		coll, hn := refName(ah.GetHealthCheck())
		if coll != "healthChecks" || s.lb["healthChecks"][hn] == nil {
			return errorf(400, "invalid", "Invalid value for field 'resource.autoHealingPolicies[0].healthCheck': '%s'. The resource was not found.", ah.GetHealthCheck())
		}
		if d := ah.GetInitialDelaySec(); d < 0 || d > 3600 {
			return errorf(400, "invalid", "Invalid value for field 'resource.autoHealingPolicies[0].initialDelaySec': '%d'. Must be in the range [0, 3600].", d)
		}
	}
	return nil
}

// healthSteps is how many steps a RUNNING instance of a group with autohealing stays UNKNOWN before it is probed;
// HealSteps (Options) how many steps an UNHEALTHY one stays before the group recreates it.
const healthSteps = 1

// stepHealth updates the health state of g's running instances and recreates those unhealthy for
// Options.HealSteps steps (autohealing).
func (s *Server) stepHealth(g *group) {
	hc := s.autohealCheck(g)
	for _, in := range g.instances {
		if hc == nil || in.status != "RUNNING" || in.action != "NONE" {
			in.health, in.sick, in.up = "", 0, 0
			continue
		}
		in.up++
		switch {
		case in.up <= healthSteps:
			in.health = "UNKNOWN"
		case s.probe(g, in, hc):
			in.health, in.sick = "HEALTHY", 0
		default:
			in.health = "UNHEALTHY"
			in.sick++
			if in.sick > s.opts.HealSteps {
				s.nextID++
				in.id, in.status, in.action, in.countdown = s.nextID, "PROVISIONING", "RECREATING", s.opts.BootSteps
				in.health, in.sick, in.up = "", 0, 0
				in.healed++
			}
		}
	}
}

// ready tells whether an instance counts as available in a rollout: RUNNING with no action, and HEALTHY when the
// group has an autohealing policy (GCE waits for the health check before it counts an instance as updated).
func (s *Server) ready(g *group, in *instance) bool {
	if in.status != "RUNNING" || in.action != "NONE" {
		return false
	}
	return s.autohealCheck(g) == nil || in.health == "HEALTHY"
}

// machine types: the predefined ones of machine, and custom types checked against GCE's rules.
var customMachineRE = regexp.MustCompile(`^(?:(e2|n2|n2d|n1)-)?custom-([0-9]+)-([0-9]+)(-ext)?$`)

// checkMachineType answers what GCE answers for a machine type: "" when it exists, else why not.
func checkMachineType(mt string) string {
	if machine.MatchString(mt) {
		return ""
	}
	m := customMachineRE.FindStringSubmatch(mt)
	if m == nil {
		return fmt.Sprintf("Machine type with name '%s' does not exist.", mt)
	}
	fam := m[1]
	if fam == "" {
		fam = "n1"
	}
	cpu, _ := strconv.Atoi(m[2])
	mem, _ := strconv.Atoi(m[3])
	ext := m[4] != ""
	if mem%256 != 0 {
		return fmt.Sprintf("Invalid custom machine type '%s': memory must be a multiple of 256 MB.", mt)
	}
	var okCPU bool
	minPer, maxPer := 512, 8192
	switch fam {
	case "e2":
		okCPU = cpu >= 2 && cpu <= 32 && cpu%2 == 0
		if ext {
			return fmt.Sprintf("Invalid custom machine type '%s': E2 custom machine types do not support extended memory.", mt)
		}
	case "n1":
		okCPU = cpu == 1 || cpu >= 2 && cpu <= 96 && cpu%2 == 0
		minPer, maxPer = 922, 6656
	case "n2":
		okCPU = cpu >= 2 && cpu <= 32 && cpu%2 == 0 || cpu > 32 && cpu <= 80 && cpu%4 == 0
	case "n2d":
		okCPU = cpu == 2 || cpu == 4 || cpu == 8 || cpu == 16 || cpu > 16 && cpu <= 96 && cpu%16 == 0
	}
	if !okCPU {
		return fmt.Sprintf("Invalid custom machine type '%s': %s custom machine types do not support %d vCPUs.", mt, strings.ToUpper(fam), cpu)
	}
	if mem < cpu*minPer || !ext && mem > cpu*maxPer {
		return fmt.Sprintf("Invalid custom machine type '%s': memory must be between %d MB and %d MB per vCPU.", mt, minPer, maxPer)
	}
	if fam == "e2" && mem > 128*1024 {
		return fmt.Sprintf("Invalid custom machine type '%s': E2 custom machine types support at most 128 GB of memory.", mt)
	}
	return ""
}
