package computeemu

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// The instances of managed groups, as the zonal instances API shows them: a zone of the group's distribution
// policy (round robin), an internal address from the region's default subnet (10.132.0.0/20, as europe-west1's),
// and, when the instance's template has an access config, an ephemeral external address once it runs. Labels are
// the template's, copied when the instance is made.

var (
	aggRE  = regexp.MustCompile(`^/compute/v1/projects/([^/]+)/aggregated/instances$`)
	zoneRE = regexp.MustCompile(`^/compute/v1/projects/([^/]+)/zones/([^/]+)/instances(?:/([^/]+))?$`)
)

// instanceRoute serves the instance calls: aggregated/instances (filter), zones/{zone}/instances (filter) and
// zones/{zone}/instances/{name}. ok is false for other paths.
func (s *Server) instanceRoute(method, path string, q map[string][]string) (m proto.Message, e *apiError, ok bool) {
	if method != http.MethodGet {
		if aggRE.MatchString(path) || zoneRE.MatchString(path) {
			return nil, errorf(405, "httpMethodNotAllowed", "HTTP method %s is not supported by this URL", method), true
		}
		return nil, nil, false
	}
	if mm := aggRE.FindStringSubmatch(path); mm != nil {
		if mm[1] != s.opts.Project {
			return nil, errorf(404, "notFound", "The resource 'projects/%s' was not found", mm[1]), true
		}
		f, e := parseFilter(first(q["filter"]))
		if e != nil {
			return nil, e, true
		}
		return s.aggregatedInstances(f), nil, true
	}
	mm := zoneRE.FindStringSubmatch(path)
	if mm == nil {
		return nil, nil, false
	}
	project, zone, name := mm[1], mm[2], mm[3]
	if project != s.opts.Project {
		return nil, errorf(404, "notFound", "The resource 'projects/%s' was not found", project), true
	}
	if !s.knownZone(zone) {
		return nil, errorf(404, "notFound", "The resource 'projects/%s/zones/%s' was not found", project, zone), true
	}
	if name != "" {
		for _, g := range s.groups {
			for _, in := range g.instances {
				if in.name == name && in.zone == zone {
					return s.instanceView(in), nil, true
				}
			}
		}
		return nil, errorf(404, "notFound", "The resource 'projects/%s/zones/%s/instances/%s' was not found", project, zone, name), true
	}
	f, e := parseFilter(first(q["filter"]))
	if e != nil {
		return nil, e, true
	}
	out := &computepb.InstanceList{Kind: proto.String("compute#instanceList"), Id: proto.String("projects/" + project + "/zones/" + zone + "/instances"),
		Items: s.instancesIn(zone, f)}
	return out, nil, true
}

func (s *Server) knownZone(zone string) bool {
	for _, z := range s.opts.Zones {
		if z == zone {
			return true
		}
	}
	return false
}

// instancesIn are the instances of zone matching f, by name.
func (s *Server) instancesIn(zone string, f filter) []*computepb.Instance {
	var out []*computepb.Instance
	for _, g := range s.groups {
		for _, in := range g.instances {
			if in.zone != zone {
				continue
			}
			if v := s.instanceView(in); f.match(v) {
				out = append(out, v)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}

// aggregatedInstances is instances.aggregatedList: every zone of the region as a scope, with its instances or the
// NO_RESULTS_ON_PAGE warning Compute gives an empty scope.
func (s *Server) aggregatedInstances(f filter) *computepb.InstanceAggregatedList {
	out := &computepb.InstanceAggregatedList{Kind: proto.String("compute#instanceAggregatedList"),
		Id: proto.String("projects/" + s.opts.Project + "/aggregated/instances"), Items: map[string]*computepb.InstancesScopedList{}}
	for _, z := range s.opts.Zones {
		sl := &computepb.InstancesScopedList{Instances: s.instancesIn(z, f)}
		if len(sl.Instances) == 0 {
			sl.Warning = &computepb.Warning{Code: proto.String("NO_RESULTS_ON_PAGE"),
				Message: proto.String("There are no results for scope 'zones/" + z + "' on this page.")}
		}
		out.Items["zones/"+z] = sl
	}
	return out
}

// instanceView is an instance as instances.get answers it.
func (s *Server) instanceView(in *instance) *computepb.Instance {
	nic := &computepb.NetworkInterface{Name: proto.String("nic0"), Network: proto.String(in.network), NetworkIP: proto.String(in.networkIP)}
	if in.natIP != "" {
		ac := &computepb.AccessConfig{Kind: proto.String("compute#accessConfig"), Name: proto.String("external-nat"),
			Type: proto.String("ONE_TO_ONE_NAT")}
		if in.status == "RUNNING" { // the ephemeral address is there once the instance runs
			ac.NatIP = proto.String(in.natIP)
		}
		nic.AccessConfigs = []*computepb.AccessConfig{ac}
	}
	zone := s.zoneLink(in.zone)
	return &computepb.Instance{
		Kind: proto.String("compute#instance"), Id: proto.Uint64(in.id), Name: proto.String(in.name),
		Zone: proto.String(zone), Status: proto.String(in.status), Labels: maps.Clone(in.labels),
		MachineType:       proto.String(zone + "/machineTypes/" + in.machineType),
		NetworkInterfaces: []*computepb.NetworkInterface{nic},
		SelfLink:          proto.String(zone + "/instances/" + in.name),
	}
}

// placeInstance gives a new instance of g its zone, addresses and labels from its template.
func (s *Server) placeInstance(g *group, in *instance) {
	var zones []string
	for _, z := range g.pb.GetDistributionPolicy().GetZones() {
		zones = append(zones, templateName(z.GetZone()))
	}
	if len(zones) == 0 {
		zones = s.opts.Zones
	}
	in.zone = zones[(g.seq-1)%len(zones)]
	s.ips++
	in.networkIP = fmt.Sprintf("10.132.%d.%d", s.ips/250, s.ips%250+2)
	in.network = "global/networks/default"
	if t := s.templates[in.template]; t != nil {
		pr := t.pb.GetProperties()
		in.labels = maps.Clone(pr.GetLabels())
		in.machineType = pr.GetMachineType()
		if nics := pr.GetNetworkInterfaces(); len(nics) > 0 {
			if n := nics[0].GetNetwork(); n != "" {
				in.network = n
			}
			if len(nics[0].GetAccessConfigs()) > 0 {
				in.natIP = fmt.Sprintf("34.76.%d.%d", s.ips/250, s.ips%250+1)
			}
		}
	}
}

// filter is a parsed list filter: terms joined by AND (or OR, evaluated left to right), as Compute's list
// methods take them: `name eq "regexp"`, `labels.env = "prod"`, `(a = "x") (b != "y")`, `labels.env:*`.
type filter struct {
	terms []term
	ors   []bool // ors[i]: terms[i+1] is joined by OR
}

type term struct {
	path  []string
	op    string // = != : eq ne
	value string
	re    *regexp.Regexp
}

var termRE = regexp.MustCompile(`^\s*([A-Za-z][A-Za-z0-9_.-]*)\s*(=|!=|:|\beq\b|\bne\b)\s*("(?:[^"\\]|\\.)*"|[^\s()]+)\s*`)

// parseFilter parses s ("" matches everything); what it cannot read is a 400, as Compute answers.
func parseFilter(s string) (filter, *apiError) {
	var f filter
	bad := func() (filter, *apiError) {
		return filter{}, errorf(400, "invalid", "Invalid value for field 'filter': '%s'. Invalid list filter expression.", s)
	}
	rest := strings.TrimSpace(s)
	if rest == "" {
		return f, nil
	}
	if !strings.HasPrefix(rest, "(") { // one bare expression; eq and ne (regular expressions) only stand alone
		t, n, ok := parseTerm(rest)
		if !ok || strings.TrimSpace(rest[n:]) != "" {
			return bad()
		}
		return filter{terms: []term{t}}, nil
	}
	for rest != "" {
		or := false
		if len(f.terms) > 0 {
			switch {
			case strings.HasPrefix(rest, "AND "):
				rest = strings.TrimSpace(rest[4:])
			case strings.HasPrefix(rest, "OR "):
				rest, or = strings.TrimSpace(rest[3:]), true
			}
		}
		if !strings.HasPrefix(rest, "(") {
			return bad()
		}
		t, n, ok := parseTerm(rest[1:])
		if !ok || t.re != nil || !strings.HasPrefix(rest[1+n:], ")") {
			return bad()
		}
		if len(f.terms) > 0 {
			f.ors = append(f.ors, or)
		}
		f.terms = append(f.terms, t)
		rest = strings.TrimSpace(rest[1+n+1:])
	}
	return f, nil
}

func parseTerm(s string) (term, int, bool) {
	m := termRE.FindStringSubmatchIndex(s)
	if m == nil {
		return term{}, 0, false
	}
	t := term{path: strings.Split(s[m[2]:m[3]], "."), op: s[m[4]:m[5]], value: s[m[6]:m[7]]}
	if strings.HasPrefix(t.value, `"`) {
		v := t.value[1 : len(t.value)-1]
		t.value = regexp.MustCompile(`\\(.)`).ReplaceAllString(v, "$1")
	}
	if t.op == "eq" || t.op == "ne" {
		re, err := regexp.Compile("^(?:" + t.value + ")$")
		if err != nil {
			return term{}, 0, false
		}
		t.re = re
	}
	return t, m[1], true
}

// match tells whether the resource m (read as its JSON fields) passes the filter.
func (f filter) match(m proto.Message) bool {
	if len(f.terms) == 0 {
		return true
	}
	doc := jsonDoc(m)
	ok := f.terms[0].match(doc)
	for i, t := range f.terms[1:] {
		if f.ors[i] {
			ok = ok || t.match(doc)
		} else {
			ok = ok && t.match(doc)
		}
	}
	return ok
}

func (t term) match(doc any) bool {
	v, found := lookup(doc, t.path)
	switch t.op {
	case ":":
		return found && (t.value == "*" || v == t.value || strings.Contains(v, t.value))
	case "=":
		return found && v == t.value
	case "!=":
		return !found || v != t.value
	case "eq":
		return found && t.re.MatchString(v)
	}
	return !found || !t.re.MatchString(v) // ne
}

// lookup reads a dotted path of a JSON document as a string (numbers and booleans as JSON writes them).
func lookup(doc any, path []string) (string, bool) {
	for _, p := range path {
		m, ok := doc.(map[string]any)
		if !ok {
			return "", false
		}
		if doc, ok = m[p]; !ok {
			return "", false
		}
	}
	switch v := doc.(type) {
	case string:
		return v, true
	case nil, map[string]any, []any:
		return "", false
	default:
		return fmt.Sprint(v), true
	}
}

// jsonDoc is m as its JSON fields, the names filters use.
func jsonDoc(m proto.Message) any {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil
	}
	var doc any
	if json.Unmarshal(b, &doc) != nil {
		return nil
	}
	return doc
}
