// Package route53emu is a wire-level emulator of the subset of the Amazon Route 53 API (2013-04-01, REST/XML)
// that berth's route53 router uses, for one hosted zone, so that the real aws-sdk-go-v2 route53 client works
// against it unchanged; it also answers DNS queries from the zone on a loopback port.
//
// Served: POST and GET /2013-04-01/hostedzone/{Id}/rrset (ChangeResourceRecordSets, ListResourceRecordSets with
// the name/type/identifier start and MaxItems paging, in Route 53's order: names with their labels reversed, then
// type, then set identifier), GET /2013-04-01/change/{Id} (GetChange) and GET /2013-04-01/hostedzone/{Id}
// (GetHostedZone). Requests must carry a SigV4 Authorization header for the route53 service (any key).
//
// Route 53's rules that matter to berth are kept: a change batch is all or nothing and is applied change by
// change (a DELETE must give the record set exactly as it is, a CREATE must not find one; InvalidChangeBatch with
// Route 53's messages otherwise); a name must be inside the zone; a CNAME cannot sit beside any other record at a
// name, nor at the apex, and holds one value; a weighted and a plain record set cannot share a name and type;
// weights are 0..255, TTLs 0..2147483647 (InvalidInput otherwise); at most 1000 values and 32,000 characters of
// values per request; TXT strings of at most 255 characters; the apex SOA and NS cannot be deleted. Errors come in
// Route 53's shapes: <ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>, and the
// <InvalidChangeBatch><Messages/> document for batch errors.
//
// A change is PENDING for Options.PendingPolls GetChange polls (SetPending changes it) and at least
// Options.PendingFor, then INSYNC. The API (ListResourceRecordSets) sees a change at once; the DNS server answers
// from the zone as of the newest INSYNC change, as Route 53's name servers do once a change has propagated, so a
// test can tell a router that returns before INSYNC from one that waits.
//
// DNS (ServeDNS, on dnstest.Serve): REFUSED outside the zone; NXDOMAIN for a name with no record sets and no
// names below it; weighted record sets of a name and type answered one per query, chosen by weight with
// dnstest.Pick on a seeded source (all weights 0: uniformly); a CNAME answered alone (the client asks for its
// target next, as through a recursive resolver; Route 53 itself would add an in-zone chain).
//
// Tests drive it with Fail (a queue of faults per operation: Throttling, PriorRequestNotComplete, 5xx; with
// Fault.Applied, the request is served and its answer replaced by the fault, as when an answer is lost), Plant
// (record sets berth did not write, INSYNC at once), SetPending, and read it with Changes (every change applied,
// with its time) and RecordSets.
//
// Non-goals: more than one hosted zone, alias records, health checks, routing policies other than weighted,
// traffic policies, DNSSEC, private zones, real signature verification, the 5 requests per second rate limit.
//
// Sketch:
//
//	emu := route53emu.New("example.com", route53emu.Options{})
//	srv := httptest.NewServer(emu)           // the SDK's BaseEndpoint
//	dnsSrv, _ := emu.ServeDNS("127.0.0.1:0") // dnstest.Lookup(ctx, dnsSrv.Addr(), name)
//	emu.Fail("ChangeResourceRecordSets", route53emu.Throttling())
package route53emu
