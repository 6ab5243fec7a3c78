package route53emu

import (
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

const xmlns = "https://route53.amazonaws.com/doc/2013-04-01/"

// timeFormat is how Route 53 writes SubmittedAt.
const timeFormat = "2006-01-02T15:04:05.000Z"

// types Route 53 serves in record sets.
var rrTypes = []string{"A", "AAAA", "CAA", "CNAME", "DS", "HTTPS", "MX", "NAPTR", "NS", "PTR", "SOA", "SPF", "SRV",
	"SSHFP", "SVCB", "TLSA", "TXT"}

type xmlRR struct {
	Value string `xml:"Value"`
}

type xmlRRs struct {
	RR []xmlRR `xml:"ResourceRecord"`
}

// xmlRRSet is a ResourceRecordSet element. The fields after ResourceRecords are parsed only to be refused.
type xmlRRSet struct {
	Name                    string    `xml:"Name"`
	Type                    string    `xml:"Type"`
	SetIdentifier           string    `xml:"SetIdentifier,omitempty"`
	Weight                  *int64    `xml:"Weight,omitempty"`
	TTL                     *int64    `xml:"TTL,omitempty"`
	ResourceRecords         *xmlRRs   `xml:"ResourceRecords,omitempty"`
	AliasTarget             *struct{} `xml:"AliasTarget"`
	Region                  string    `xml:"Region,omitempty"`
	Failover                string    `xml:"Failover,omitempty"`
	GeoLocation             *struct{} `xml:"GeoLocation"`
	GeoProximityLocation    *struct{} `xml:"GeoProximityLocation"`
	CidrRoutingConfig       *struct{} `xml:"CidrRoutingConfig"`
	MultiValueAnswer        *bool     `xml:"MultiValueAnswer"`
	HealthCheckID           string    `xml:"HealthCheckId,omitempty"`
	TrafficPolicyInstanceID string    `xml:"TrafficPolicyInstanceId,omitempty"`
}

type changeRequest struct {
	XMLName     xml.Name `xml:"ChangeResourceRecordSetsRequest"`
	ChangeBatch struct {
		Comment string `xml:"Comment"`
		Changes struct {
			Change []struct {
				Action            string    `xml:"Action"`
				ResourceRecordSet *xmlRRSet `xml:"ResourceRecordSet"`
			} `xml:"Change"`
		} `xml:"Changes"`
	} `xml:"ChangeBatch"`
}

type changeInfo struct {
	ID          string `xml:"Id"`
	Status      string `xml:"Status"`
	SubmittedAt string `xml:"SubmittedAt"`
	Comment     string `xml:"Comment,omitempty"`
}

type changeResponse struct {
	XMLName    xml.Name   `xml:"ChangeResourceRecordSetsResponse"`
	Xmlns      string     `xml:"xmlns,attr"`
	ChangeInfo changeInfo `xml:"ChangeInfo"`
}

type getChangeResponse struct {
	XMLName    xml.Name   `xml:"GetChangeResponse"`
	Xmlns      string     `xml:"xmlns,attr"`
	ChangeInfo changeInfo `xml:"ChangeInfo"`
}

type listResponse struct {
	XMLName            xml.Name `xml:"ListResourceRecordSetsResponse"`
	Xmlns              string   `xml:"xmlns,attr"`
	ResourceRecordSets struct {
		Sets []xmlRRSet `xml:"ResourceRecordSet"`
	} `xml:"ResourceRecordSets"`
	IsTruncated          bool   `xml:"IsTruncated"`
	NextRecordName       string `xml:"NextRecordName,omitempty"`
	NextRecordType       string `xml:"NextRecordType,omitempty"`
	NextRecordIdentifier string `xml:"NextRecordIdentifier,omitempty"`
	MaxItems             int    `xml:"MaxItems"`
}

type zoneResponse struct {
	XMLName    xml.Name `xml:"GetHostedZoneResponse"`
	Xmlns      string   `xml:"xmlns,attr"`
	HostedZone struct {
		ID              string `xml:"Id"`
		Name            string `xml:"Name"`
		CallerReference string `xml:"CallerReference"`
		Config          struct {
			PrivateZone bool `xml:"PrivateZone"`
		} `xml:"Config"`
		ResourceRecordSetCount int `xml:"ResourceRecordSetCount"`
	} `xml:"HostedZone"`
	DelegationSet struct {
		NameServers struct {
			NameServer []string `xml:"NameServer"`
		} `xml:"NameServers"`
	} `xml:"DelegationSet"`
}

type errorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

type invalidChangeBatch struct {
	XMLName  xml.Name `xml:"InvalidChangeBatch"`
	Xmlns    string   `xml:"xmlns,attr"`
	Messages struct {
		Message []string `xml:"Message"`
	} `xml:"Messages"`
	RequestID string `xml:"RequestId"`
}

func writeXML(w http.ResponseWriter, status int, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, reqID string, f Fault) {
	var r errorResponse
	r.Xmlns = xmlns
	r.Error.Type = "Sender"
	if f.Status >= 500 {
		r.Error.Type = "Receiver"
	}
	r.Error.Code, r.Error.Message, r.RequestID = f.Code, f.Message, reqID
	writeXML(w, f.Status, r)
}

func invalidInput(w http.ResponseWriter, reqID, msg string) {
	writeError(w, reqID, Fault{Status: 400, Code: "InvalidInput", Message: msg})
}

// describe is how Route 53's messages name a change: "[Action=CREATE, Name=x., Type=A, SetIdentifier=null]".
func describe(action string, rs RecordSet) string {
	id := "null"
	if rs.SetIdentifier != "" {
		id = rs.SetIdentifier
	}
	return fmt.Sprintf("[Action=%s, Name=%s, Type=%s, SetIdentifier=%s]", action, rs.Name, rs.Type, id)
}

// setName is how Route 53's batch messages name a set: "[name='x.', type='A', set-identifier='aws']".
func setName(k key) string {
	if k.id != "" {
		return fmt.Sprintf("[name='%s', type='%s', set-identifier='%s']", k.name, k.typ, k.id)
	}
	return fmt.Sprintf("[name='%s', type='%s']", k.name, k.typ)
}

func (e *Emulator) changeRRSets(w http.ResponseWriter, r *http.Request, reqID string) {
	var req changeRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<22))
	if err == nil {
		err = xml.Unmarshal(body, &req)
	}
	if err != nil {
		invalidInput(w, reqID, "Invalid XML ; "+err.Error())
		return
	}
	changes := req.ChangeBatch.Changes.Change
	if len(changes) == 0 {
		invalidInput(w, reqID, "1 validation error detected: Value null at 'changeBatch.changes' failed to satisfy constraint: Member must not be null")
		return
	}
	if len(req.ChangeBatch.Comment) > 256 {
		invalidInput(w, reqID, "1 validation error detected: Value at 'changeBatch.comment' failed to satisfy constraint: Member must have length less than or equal to 256")
		return
	}
	batch := make([]Change, 0, len(changes))
	values, chars := 0, 0
	for i, c := range changes {
		if c.Action != "CREATE" && c.Action != "DELETE" && c.Action != "UPSERT" {
			invalidInput(w, reqID, fmt.Sprintf("1 validation error detected: Value '%s' at 'changeBatch.changes.%d.member.action' failed to satisfy constraint: Member must satisfy enum value set: [CREATE, UPSERT, DELETE]", c.Action, i+1))
			return
		}
		x := c.ResourceRecordSet
		if x == nil {
			invalidInput(w, reqID, fmt.Sprintf("1 validation error detected: Value null at 'changeBatch.changes.%d.member.resourceRecordSet' failed to satisfy constraint: Member must not be null", i+1))
			return
		}
		rs := RecordSet{Name: x.Name, Type: x.Type, SetIdentifier: x.SetIdentifier, Weight: x.Weight}
		if x.TTL != nil {
			rs.TTL = *x.TTL
		}
		if x.ResourceRecords != nil {
			for _, v := range x.ResourceRecords.RR {
				rs.Values = append(rs.Values, v.Value)
				chars += len(v.Value)
			}
		}
		values += len(rs.Values)
		if rs.Name == "" {
			invalidInput(w, reqID, fmt.Sprintf("1 validation error detected: Value null at 'changeBatch.changes.%d.member.resourceRecordSet.name' failed to satisfy constraint: Member must not be null", i+1))
			return
		}
		rs.Name = dns.Fqdn(strings.ToLower(rs.Name))
		switch {
		case x.AliasTarget != nil || x.TrafficPolicyInstanceID != "":
			invalidInput(w, reqID, "Invalid request: alias records and traffic policy records are not served by this emulator in Change with "+describe(c.Action, rs))
			return
		case x.Region != "" || x.Failover != "" || x.GeoLocation != nil || x.GeoProximityLocation != nil ||
			x.CidrRoutingConfig != nil || x.MultiValueAnswer != nil || x.HealthCheckID != "":
			invalidInput(w, reqID, "Invalid request: routing policies other than weighted and health checks are not served by this emulator in Change with "+describe(c.Action, rs))
			return
		case x.TTL == nil || x.ResourceRecords == nil || len(rs.Values) == 0:
			invalidInput(w, reqID, "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId], but found none in Change with "+describe(c.Action, rs))
			return
		}
		if msg := e.checkInput(rs, i+1, c.Action); msg != "" {
			invalidInput(w, reqID, msg)
			return
		}
		batch = append(batch, Change{Action: c.Action, Name: rs.Name, Type: rs.Type, SetIdentifier: rs.SetIdentifier,
			Weight: rs.Weight, TTL: rs.TTL, Values: rs.Values})
	}
	var msgs []string
	if values > MaxValuesPerBatch {
		msgs = append(msgs, fmt.Sprintf("Number of records limit of %d exceeded.", MaxValuesPerBatch))
	}
	if chars > MaxCharsPerBatch {
		msgs = append(msgs, fmt.Sprintf("Number of characters limit of %d exceeded.", MaxCharsPerBatch))
	}
	work, more := e.apply(e.current, batch)
	if msgs = append(msgs, more...); len(msgs) > 0 {
		var ib invalidChangeBatch
		ib.Xmlns, ib.Messages.Message, ib.RequestID = xmlns, msgs, reqID
		writeXML(w, http.StatusBadRequest, ib)
		return
	}
	e.current = work
	now := e.now().UTC()
	pc := &pendingChange{id: e.nextID("C"), submitted: now, need: e.pending, needFor: e.pendingFor}
	for i := range batch {
		batch[i].Time, batch[i].ChangeID = now, pc.id
	}
	pc.batch = batch
	e.log = append(e.log, batch...)
	e.changes[pc.id] = pc
	e.order = append(e.order, pc)
	e.sync()
	writeXML(w, http.StatusOK, changeResponse{Xmlns: xmlns, ChangeInfo: e.info(pc, req.ChangeBatch.Comment)})
}

// checkInput is what Route 53 refuses as InvalidInput before looking at the zone; "" when rs passes. i is the
// change's position, from 1.
func (e *Emulator) checkInput(rs RecordSet, i int, action string) string {
	field := func(f string) string {
		return fmt.Sprintf("'changeBatch.changes.%d.member.resourceRecordSet.%s'", i, f)
	}
	switch {
	case !slices.Contains(rrTypes, rs.Type):
		return fmt.Sprintf("1 validation error detected: Value '%s' at %s failed to satisfy constraint: Member must satisfy enum value set: [%s]", rs.Type, field("type"), strings.Join(rrTypes, ", "))
	case rs.TTL < 0:
		return fmt.Sprintf("1 validation error detected: Value '%d' at %s failed to satisfy constraint: Member must have value greater than or equal to 0", rs.TTL, field("tTL"))
	case rs.TTL > MaxTTL:
		return fmt.Sprintf("1 validation error detected: Value '%d' at %s failed to satisfy constraint: Member must have value less than or equal to %d", rs.TTL, field("tTL"), MaxTTL)
	case rs.Weight != nil && *rs.Weight < 0:
		return fmt.Sprintf("1 validation error detected: Value '%d' at %s failed to satisfy constraint: Member must have value greater than or equal to 0", *rs.Weight, field("weight"))
	case rs.Weight != nil && *rs.Weight > MaxWeight:
		return fmt.Sprintf("1 validation error detected: Value '%d' at %s failed to satisfy constraint: Member must have value less than or equal to %d", *rs.Weight, field("weight"), MaxWeight)
	case len(rs.SetIdentifier) > 128:
		return fmt.Sprintf("1 validation error detected: Value at %s failed to satisfy constraint: Member must have length less than or equal to 128", field("setIdentifier"))
	case rs.Weight != nil && rs.SetIdentifier == "":
		return "Invalid request: Missing field 'SetIdentifier' in Change with " + describe(action, rs)
	case rs.Weight == nil && rs.SetIdentifier != "":
		return "Invalid request: Expected exactly one of [Weight, Region, Failover, GeoLocation, MultiValueAnswer, GeoProximityLocation, or CidrRoutingConfig], but found none in Change with " + describe(action, rs)
	case len(rs.Name) > 255 || !validName(rs.Name):
		return fmt.Sprintf("Invalid request: DNS name %s is not valid in Change with %s", rs.Name, describe(action, rs))
	}
	return ""
}

func validName(name string) bool {
	_, ok := dns.IsDomainName(name)
	if !ok {
		return false
	}
	for _, l := range dns.SplitDomainName(name) {
		if len(l) > 63 {
			return false
		}
	}
	return true
}

// checkValues is what Route 53 refuses in a set's values, as batch messages.
func checkValues(rs RecordSet) []string {
	var msgs []string
	bad := func(problem, v string) {
		msgs = append(msgs, fmt.Sprintf("Invalid Resource Record: 'FATAL problem: %s encountered with '%s''", problem, v))
	}
	for _, v := range rs.Values {
		switch rs.Type {
		case "A":
			if ip := net.ParseIP(v); ip == nil || ip.To4() == nil || strings.Contains(v, ":") {
				bad("ARRDATAIllegalIPv4Address (Value is not a valid IPv4 address)", v)
			}
			continue
		case "AAAA":
			if ip := net.ParseIP(v); ip == nil || !strings.Contains(v, ":") {
				bad("AAAARRDATAIllegalIPv6Address (Value is not a valid IPv6 address)", v)
			}
			continue
		case "CNAME":
			if !validName(dns.Fqdn(v)) {
				bad("DomainLabelEmpty (Domain label is empty)", v)
			}
			continue
		}
		rr, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", rs.Name, rs.TTL, rs.Type, v))
		if err != nil || rr == nil {
			bad("InvalidRData (Value is not valid for the record type)", v)
			continue
		}
		if rs.Type == "TXT" || rs.Type == "SPF" {
			for _, s := range txtStrings(v) {
				if len(s) > MaxTXTString {
					bad("CharacterStringTooLong (Value is too long)", v)
					break
				}
			}
		}
	}
	if rs.Type == "CNAME" && len(rs.Values) > 1 {
		msgs = append(msgs, fmt.Sprintf("RRSet of type CNAME with DNS name %s contains more than one value", rs.Name))
	}
	return msgs
}

// txtStrings splits a TXT value into its character strings (quoted, with \" and \\ escapes, or bare words);
// \ddd escapes count as one character.
func txtStrings(v string) []string {
	var out []string
	for i := 0; i < len(v); {
		switch {
		case v[i] == ' ':
			i++
		case v[i] == '"':
			var b strings.Builder
			for i++; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' && i+3 < len(v) && isDigit(v[i+1]) && isDigit(v[i+2]) && isDigit(v[i+3]) {
					i += 3
				} else if v[i] == '\\' && i+1 < len(v) {
					i++
				}
				b.WriteByte(v[i])
			}
			out = append(out, b.String())
			i++
		default:
			j := strings.IndexByte(v[i:], ' ')
			if j < 0 {
				j = len(v) - i
			}
			out = append(out, v[i:i+j])
			i += j
		}
	}
	return out
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func sameSet(a, b RecordSet) bool {
	if a.TTL != b.TTL || (a.Weight == nil) != (b.Weight == nil) || (a.Weight != nil && *a.Weight != *b.Weight) {
		return false
	}
	x, y := slices.Clone(a.Values), slices.Clone(b.Values)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// apply applies batch to a copy of sets, change by change, and checks the result as Route 53 does; it returns the
// copy and the batch's error messages (none: the batch passes).
func (e *Emulator) apply(sets map[key]RecordSet, batch []Change) (map[key]RecordSet, []string) {
	work := cloneSets(sets)
	var msgs []string
	touched := map[string]bool{}
	deleted := map[key]bool{}
	for _, c := range batch {
		rs := RecordSet{Name: c.Name, Type: c.Type, SetIdentifier: c.SetIdentifier, Weight: c.Weight, TTL: c.TTL,
			Values: slices.Clone(c.Values)}
		k := rs.key()
		if !e.inZone(rs.Name) {
			msgs = append(msgs, fmt.Sprintf("RRSet with DNS name %s is not permitted in zone %s", rs.Name, e.zone))
			continue
		}
		if c.Action != "DELETE" {
			msgs = append(msgs, checkValues(rs)...)
		}
		touched[rs.Name] = true
		cur, exists := work[k]
		switch c.Action {
		case "CREATE":
			if exists {
				msgs = append(msgs, fmt.Sprintf("Tried to create resource record set %s but it already exists", setName(k)))
				continue
			}
			work[k] = rs
		case "UPSERT":
			work[k] = rs
		case "DELETE":
			switch {
			case deleted[k]:
				msgs = append(msgs, fmt.Sprintf("Tried to delete resource record set %s but it was not found (it was deleted earlier in this batch)", setName(k)))
			case !exists:
				msgs = append(msgs, fmt.Sprintf("Tried to delete resource record set %s but it was not found", setName(k)))
			case !sameSet(cur, rs):
				msgs = append(msgs, fmt.Sprintf("Tried to delete resource record set %s but the values provided do not match the current values", setName(k)))
			case rs.Name == e.zone && (rs.Type == "SOA" || rs.Type == "NS"):
				msgs = append(msgs, fmt.Sprintf("A HostedZone must contain at least one %s record for the zone itself.", rs.Type))
			default:
				delete(work, k)
				deleted[k] = true
			}
		}
	}
	for name := range touched {
		msgs = append(msgs, e.conflicts(work, name)...)
	}
	return work, msgs
}

// conflicts checks the record sets at name: a CNAME alone (and not at the apex), weighted and plain sets of one
// type not mixed.
func (e *Emulator) conflicts(sets map[key]RecordSet, name string) []string {
	types := map[string][2]int{} // type → plain, weighted
	for k, rs := range sets {
		if k.name != name {
			continue
		}
		n := types[k.typ]
		if rs.Weight != nil {
			n[1]++
		} else {
			n[0]++
		}
		types[k.typ] = n
	}
	var msgs []string
	if _, ok := types["CNAME"]; ok {
		if name == e.zone {
			msgs = append(msgs, fmt.Sprintf("RRSet of type CNAME with DNS name %s is not permitted at apex in zone %s", name, e.zone))
		}
		if len(types) > 1 {
			msgs = append(msgs, fmt.Sprintf("RRSet of type CNAME with DNS name %s is not permitted as it conflicts with other records with the same DNS name in zone %s", name, e.zone))
		}
	}
	for t, n := range types {
		if n[0] > 0 && n[1] > 0 {
			msgs = append(msgs, fmt.Sprintf("RRSet with DNS name %s, type %s cannot be created as a non-weighted set exists with the same name and type.", name, t))
		}
	}
	slices.Sort(msgs)
	return msgs
}

func (e *Emulator) info(pc *pendingChange, comment string) changeInfo {
	status := "PENDING"
	if pc.insync {
		status = "INSYNC"
	}
	return changeInfo{ID: "/change/" + pc.id, Status: status, SubmittedAt: pc.submitted.Format(timeFormat), Comment: comment}
}

func (e *Emulator) getChange(w http.ResponseWriter, id, reqID string) {
	pc, ok := e.changes[id]
	if !ok {
		writeError(w, reqID, Fault{Status: 404, Code: "NoSuchChange", Message: "Could not find resource with ID: " + id})
		return
	}
	if !pc.insync {
		pc.polls++
	}
	e.sync()
	writeXML(w, http.StatusOK, getChangeResponse{Xmlns: xmlns, ChangeInfo: e.info(pc, "")})
}

func (e *Emulator) listRRSets(w http.ResponseWriter, r *http.Request, reqID string) {
	q := r.URL.Query()
	name, typ, id := q.Get("name"), strings.ToUpper(q.Get("type")), q.Get("identifier")
	maxItems := DefaultListItems
	if s := q.Get("maxitems"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			invalidInput(w, reqID, "Invalid value for maxitems: "+s)
			return
		}
		maxItems = min(n, MaxListItems)
	}
	switch {
	case typ != "" && name == "":
		invalidInput(w, reqID, "The input is not valid: type is given without name")
		return
	case id != "" && typ == "":
		invalidInput(w, reqID, "The input is not valid: identifier is given without type")
		return
	case typ != "" && !slices.Contains(rrTypes, typ):
		invalidInput(w, reqID, "Invalid type: "+typ)
		return
	}
	all := sortedSets(e.current)
	start := 0
	if name != "" {
		from := key{dns.Fqdn(strings.ToLower(name)), typ, id}
		start = len(all)
		for i, rs := range all {
			if less(rs.key(), from) >= 0 {
				start = i
				break
			}
		}
	}
	resp := listResponse{Xmlns: xmlns, MaxItems: maxItems}
	end := min(start+maxItems, len(all))
	for _, rs := range all[start:end] {
		x := xmlRRSet{Name: rs.Name, Type: rs.Type, SetIdentifier: rs.SetIdentifier, Weight: rs.Weight, TTL: &rs.TTL,
			ResourceRecords: &xmlRRs{}}
		for _, v := range rs.Values {
			x.ResourceRecords.RR = append(x.ResourceRecords.RR, xmlRR{Value: v})
		}
		resp.ResourceRecordSets.Sets = append(resp.ResourceRecordSets.Sets, x)
	}
	if end < len(all) {
		next := all[end]
		resp.IsTruncated = true
		resp.NextRecordName, resp.NextRecordType, resp.NextRecordIdentifier = next.Name, next.Type, next.SetIdentifier
	}
	writeXML(w, http.StatusOK, resp)
}

func (e *Emulator) getZone(w http.ResponseWriter) {
	resp := zoneResponse{Xmlns: xmlns}
	resp.HostedZone.ID = "/hostedzone/" + e.zoneID
	resp.HostedZone.Name = e.zone
	resp.HostedZone.CallerReference = "route53emu-" + e.zone
	resp.HostedZone.ResourceRecordSetCount = len(e.current)
	if ns, ok := e.current[key{e.zone, "NS", ""}]; ok {
		resp.DelegationSet.NameServers.NameServer = slices.Clone(ns.Values)
	}
	writeXML(w, http.StatusOK, resp)
}
