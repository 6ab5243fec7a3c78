// Package route53 is the "route53" router of stable names (endpoint.Router, endpoint.Lister): a name in an Amazon
// Route 53 hosted zone serving a workload's copies as weighted records, on the aws-sdk-go-v2 route53 client.
//
// Settings of a `dns:` entry: zoneId (required: the hosted zone's ID, "Z0123...", "/hostedzone/" allowed),
// region (of the request signing; default "us-east-1"), profile (a shared-config profile), endpoint (the Route 53
// API's base URL, for tests; the SDK's AWS_ENDPOINT_URL_ROUTE_53 and AWS_ENDPOINT_URL apply when unset). Credentials
// come from the AWS default chain (environment, shared files, web identity, container and instance roles).
//
// Record layout of a name N (one scheme for every mix of members):
//
//	N                                 CNAME  weighted, SetIdentifier = member's target, Weight = member's weight,
//	                                         one per member, pointing at the member's host name (a load balancer)
//	                                         or at the member's own name below
//	<target>._berth.N                 A / AAAA  the member's IP addresses (plain record sets)
//	_berth-owner.N                    TXT    endpoint.OwnerText(owner)
//
// Every record set has the TTL of the Set. Weights 0..100 are Route 53 weights as they are (Route 53 takes
// 0..255): a member of weight 0 gets no answers while another has weight; if every weight is 0, Route 53 answers
// them alike. Because every member is a weighted CNAME, moving a member from IPs to a host name, or adding a host
// name beside IPs, never changes the type at N (Route 53 allows no CNAME beside other types, and no mix of types
// in one weighted group). Get reads the layout back to the same Members; a record set at N that is not a
// weighted CNAME is not berth's (ErrNotOwned), as are records at N or below _berth.N without the ownership TXT;
// with berth's ownership TXT, every record set below _berth.N is berth's, and a Set removes what it does not want
// there.
//
// Calls: GetHostedZone once (the zone's name, so that names outside the zone and the apex are refused before a
// request); ListResourceRecordSets from N (Route 53 lists names with their labels reversed, so N, its ownership
// TXT and its members' names come together, in pages of 300); one ChangeResourceRecordSets batch per Set or
// Delete (CREATE for what is new, so that a writer racing berth fails the batch; UPSERT for what changed; DELETE
// with the exact current set; the ownership TXT last); GetChange until INSYNC, polling with capped exponential
// backoff and jitter, bounded by ctx and ChangeTimeout. Setting what is served sends no change. Throttling,
// PriorRequestNotComplete and 5xx answers are retried with backoff and jitter (RetryAttempts tries); invalid
// requests (InvalidChangeBatch, InvalidInput, NoSuchHostedZone, refused credentials) are providers.Permanent. A
// batch refused because the name changed under berth is read again: ErrNotOwned when it is no longer berth's,
// success when the records are already what the batch wanted (an earlier try went through and its answer was
// lost; Set then returns without having seen that change INSYNC).
//
// IAM: route53:GetHostedZone, route53:ListResourceRecordSets, route53:ChangeResourceRecordSets (on the hosted
// zone) and route53:GetChange (on change/*).
//
// Non-goals: alias records, health checks, other routing policies, more than one zone per router, private
// zones' VPC associations, DNSSEC.
//
// Caller's duties (endpoint.Router's): one call at a time per name; names inside the zone and not its apex;
// waiting out the TTL after a member stops being answered.
//
// Sketch:
//
//	r, _ := endpoint.New(schema.Target{Name: "route53-main", Type: "route53",
//		Settings: map[string]any{"zoneId": "Z123"}}, endpoint.Options{Instance: "berth"})
//	_ = r.Set(ctx, owner, "web.example.com", time.Minute, []endpoint.Member{
//		{Target: "aws", Addresses: []string{"lb-1.elb.amazonaws.com"}, Weight: 90},
//		{Target: "gcp", Addresses: []string{"203.0.113.7"}, Weight: 10}})
package route53
