package ecsemu

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// EC2Op prefixes the Request.Op of the EC2 calls the emulator serves ("ec2:DescribeNetworkInterfaces"), so that
// they are told from ECS's in Requests and can be given faults of their own with FailOp.
const EC2Op = "ec2:"

// ec2Version is the EC2 API version of the Query protocol's answers (their XML namespace).
const ec2Version = "2016-11-15"

// maxENIIDs bounds the NetworkInterfaceId.N of one DescribeNetworkInterfaces (EC2 answers a longer list with a
// client error; the published limit of its filter values is 1000).
const maxENIIDs = 1000

// ec2Error is an EC2 Query protocol error.
type ec2Error struct {
	status        int
	code, message string
}

// serveEC2 answers one EC2 Query protocol request (POST / with a form body: Action, Version and the parameters),
// as EC2 does for the network interfaces of the emulated tasks. It does not advance the simulation: EC2 is
// another service. Faults apply only when given for the operation itself (FailOp(EC2Op+action, ...)).
func (s *Server) serveEC2(w http.ResponseWriter, r *http.Request, body []byte) {
	form, err := url.ParseQuery(string(body))
	action := form.Get("Action")
	op := EC2Op + action
	s.mu.Lock()
	params := map[string]any{}
	for k, v := range form {
		params[k] = strings.Join(v, ",")
	}
	pb, _ := json.Marshal(params)
	s.requests = append(s.requests, Request{Op: op, Body: pb})
	reqID := fmt.Sprintf("req-%d", len(s.requests))
	kind := ""
	for i := range s.faults {
		if f := &s.faults[i]; f.op == op && f.n > 0 {
			f.n--
			kind = f.kind
			if f.n == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
			break
		}
	}
	var out any
	var e *ec2Error
	switch {
	case err != nil:
		e = &ec2Error{400, "InvalidQueryParameter", "The request body is not a form."}
	case !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 "):
		e = &ec2Error{401, "AuthFailure", "AWS was not able to validate the provided access credentials"}
	case kind != "":
		e = ec2Fault(kind, action, s.opts.Account)
	case action == "DescribeNetworkInterfaces":
		out, e = s.describeNetworkInterfaces(form, reqID)
	case action == "DescribeSubnets":
		out, e = s.describeSubnets(form, reqID)
	default:
		e = &ec2Error{400, "InvalidAction", fmt.Sprintf("The action %s is not valid for this web service.", action)}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	if e != nil {
		w.WriteHeader(e.status)
		b, _ := xml.Marshal(ec2ErrorResponse{Errors: []ec2ErrorItem{{Code: e.code, Message: e.message}}, RequestID: reqID})
		w.Write(append([]byte(xml.Header), b...))
		return
	}
	b, _ := xml.Marshal(out)
	w.Write(append([]byte(xml.Header), b...))
}

// ec2Fault is the EC2 answer to a fault kind.
func ec2Fault(kind, action, account string) *ec2Error {
	switch kind {
	case Throttle:
		return &ec2Error{503, "RequestLimitExceeded", "Request limit exceeded."}
	case Unavailable:
		return &ec2Error{503, "Unavailable", "The server is overloaded and can't handle the request."}
	case Denied:
		return &ec2Error{403, "UnauthorizedOperation", fmt.Sprintf("You are not authorized to perform this operation. "+
			"User: arn:aws:iam::%s:user/berth is not authorized to perform: ec2:%s because no identity-based policy "+
			"allows the ec2:%s action", account, action, action)}
	case Unrecognized:
		return &ec2Error{401, "AuthFailure", "AWS was not able to validate the provided access credentials"}
	}
	return &ec2Error{500, "InternalError", "An internal error has occurred."}
}

type ec2ErrorResponse struct {
	XMLName   xml.Name       `xml:"Response"`
	Errors    []ec2ErrorItem `xml:"Errors>Error"`
	RequestID string         `xml:"RequestID"`
}

type ec2ErrorItem struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type describeNetworkInterfacesResponse struct {
	XMLName    xml.Name              `xml:"DescribeNetworkInterfacesResponse"`
	Xmlns      string                `xml:"xmlns,attr"`
	RequestID  string                `xml:"requestId"`
	Interfaces []networkInterfaceOut `xml:"networkInterfaceSet>item"`
}

type networkInterfaceOut struct {
	ID               string       `xml:"networkInterfaceId"`
	SubnetID         string       `xml:"subnetId"`
	Description      string       `xml:"description"`
	OwnerID          string       `xml:"ownerId"`
	RequesterID      string       `xml:"requesterId"`
	RequesterManaged bool         `xml:"requesterManaged"`
	Status           string       `xml:"status"`
	MacAddress       string       `xml:"macAddress"`
	PrivateIP        string       `xml:"privateIpAddress"`
	PrivateDNSName   string       `xml:"privateDnsName"`
	InterfaceType    string       `xml:"interfaceType"`
	Association      *association `xml:"association,omitempty"`
}

type association struct {
	PublicIP      string `xml:"publicIp"`
	PublicDNSName string `xml:"publicDnsName"`
	IPOwnerID     string `xml:"ipOwnerId"`
}

// describeNetworkInterfaces answers DescribeNetworkInterfaces for the interfaces named by NetworkInterfaceId.N
// (the only selection berth makes; filters and paging are refused, not ignored): each attached interface of a
// task (PENDING to stopped), with its public IP when the task's service assigns one. An id that names no such
// interface fails the whole call, as EC2 does.
func (s *Server) describeNetworkInterfaces(form url.Values, reqID string) (any, *ec2Error) {
	var ids []string
	for k, v := range form {
		switch {
		case strings.HasPrefix(k, "NetworkInterfaceId."):
			if _, err := strconv.Atoi(strings.TrimPrefix(k, "NetworkInterfaceId.")); err != nil || len(v) != 1 {
				return nil, &ec2Error{400, "InvalidParameterValue", "Invalid parameter " + k}
			}
			ids = append(ids, v[0])
		case k == "Action" || k == "Version" || k == "IncludeManagedResources" || k == "DryRun":
		default:
			return nil, &ec2Error{400, "InvalidParameterCombination", "The emulator serves DescribeNetworkInterfaces by NetworkInterfaceId only, not " + k}
		}
	}
	if form.Get("DryRun") == "true" {
		return nil, &ec2Error{412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set."}
	}
	if len(ids) > maxENIIDs {
		return nil, &ec2Error{400, "InvalidParameterValue", fmt.Sprintf("The maximum number of network interface IDs is %d.", maxENIIDs)}
	}
	sort.Strings(ids)
	byID := map[string]*task{}
	for _, c := range s.clusters {
		for _, t := range c.tasks {
			if t.eni != "" && t.lastStatus != "PROVISIONING" && t.lastStatus != "STOPPED" {
				byID[t.eni] = t
			}
		}
	}
	out := describeNetworkInterfacesResponse{Xmlns: "http://ec2.amazonaws.com/doc/" + ec2Version + "/", RequestID: reqID}
	for _, id := range slices.Compact(ids) {
		t := byID[id]
		if t == nil {
			return nil, &ec2Error{400, "InvalidNetworkInterfaceID.NotFound", fmt.Sprintf("The networkInterface ID '%s' does not exist", id)}
		}
		mac := t.eni[len(t.eni)-12:]
		ni := networkInterfaceOut{ID: t.eni, SubnetID: t.subnet, Description: "arn:aws:ecs:" + s.opts.Region + ":" + s.opts.Account +
			":attachment/" + t.attachment, OwnerID: s.opts.Account, RequesterID: "578734482556", RequesterManaged: true,
			Status: "in-use", MacAddress: mac[0:2] + ":" + mac[2:4] + ":" + mac[4:6] + ":" + mac[6:8] + ":" + mac[8:10] + ":" + mac[10:12],
			PrivateIP: t.ip, PrivateDNSName: t.privateDNS(s.opts.Region), InterfaceType: "interface"}
		if t.publicIP != "" {
			ni.Association = &association{PublicIP: t.publicIP, IPOwnerID: "amazon",
				PublicDNSName: "ec2-" + strings.ReplaceAll(t.publicIP, ".", "-") + "." + s.opts.Region + ".compute.amazonaws.com"}
		}
		out.Interfaces = append(out.Interfaces, ni)
	}
	return out, nil
}

// privateDNS is the private DNS name of a task's interface.
func (t *task) privateDNS(region string) string {
	return "ip-" + strings.ReplaceAll(t.ip, ".", "-") + "." + region + ".compute.internal"
}

// TaskPublicIP returns the public IPv4 address of a task's network interface (by task ARN or ID): "" for an
// unknown task or one whose service does not assign public IPs. ECS does not report it; EC2's
// DescribeNetworkInterfaces does.
func (s *Server) TaskPublicIP(clusterName, taskRef string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.clusters[clusterName]; c != nil {
		if t := c.tasks[lastSegment(taskRef, "")]; t != nil {
			return t.publicIP
		}
	}
	return ""
}

type describeSubnetsResponse struct {
	XMLName   xml.Name    `xml:"DescribeSubnetsResponse"`
	Xmlns     string      `xml:"xmlns,attr"`
	RequestID string      `xml:"requestId"`
	Subnets   []subnetOut `xml:"subnetSet>item"`
}

type subnetOut struct {
	ID    string `xml:"subnetId"`
	VpcID string `xml:"vpcId"`
	State string `xml:"state"`
	AZ    string `xml:"availabilityZone"`
	CIDR  string `xml:"cidrBlock"`
}

// describeSubnets answers DescribeSubnets for the subnets named by SubnetId.N (every subnet exists, in the VPC
// of Options.VpcID; filters are refused, not ignored), so that a caller can find the VPC of its subnets.
func (s *Server) describeSubnets(form url.Values, reqID string) (any, *ec2Error) {
	var ids []string
	for k, v := range form {
		switch {
		case strings.HasPrefix(k, "SubnetId."):
			ids = append(ids, v[0])
		case k == "Action" || k == "Version" || k == "DryRun":
		default:
			return nil, &ec2Error{400, "InvalidParameterCombination", "The emulator serves DescribeSubnets by SubnetId only, not " + k}
		}
	}
	sort.Strings(ids)
	out := describeSubnetsResponse{Xmlns: "http://ec2.amazonaws.com/doc/" + ec2Version + "/", RequestID: reqID}
	for i, id := range slices.Compact(ids) {
		if !strings.HasPrefix(id, "subnet-") {
			return nil, &ec2Error{400, "InvalidSubnetID.NotFound", fmt.Sprintf("The subnet ID '%s' does not exist", id)}
		}
		out.Subnets = append(out.Subnets, subnetOut{ID: id, VpcID: s.vpc(), State: "available",
			AZ: fmt.Sprintf("%s%c", s.opts.Region, 'a'+i%3), CIDR: fmt.Sprintf("10.0.%d.0/24", i)})
	}
	return out, nil
}
