// Package azuredns is the "azuredns" router: it serves stable names as record sets of one Azure DNS zone, through
// the armdns RecordSetsClient (api-version 2018-05-01).
//
// Settings of a `dns:` entry: subscriptionId, resourceGroup and zone (the zone's DNS name, "example.com"), all
// required; credential (default, environment, workload-identity, managed-identity or cli, as the azure target's;
// default "default"); endpoint (Resource Manager's base URL, for tests and sovereign clouds). The identity needs
// DNS Zone Contributor on the zone. Berth manages record sets, never the zone.
//
// Azure DNS record sets have no weights (Capabilities.Weighted is false). The name itself is always a CNAME record
// set (it holds one record). What it points at, from the members of weight > 0 (all of them when every weight is
// 0):
//
//	members served          CNAME at <name> to                    record sets at _berth.<name>
//	IP addresses only       _berth.<name>.<zone>                  A (IPv4), AAAA (IPv6): every member's
//	                                                              addresses, each once, answered all together
//	                                                              in rotating order
//	a host name among them  the member of the greatest weight     none; or, when that member is IP addresses,
//	                        (the later one in Set's order on a    its A and AAAA
//	                        tie): its host name, or
//	                        _berth.<name>.<zone>
//
// A record set is written only when it has records (an IPv6-only member has no A). So a change of what the name
// serves, a move between a load balancer's host name and IP addresses included, is an update of the CNAME in
// place and of the per-member record sets beside it, never a delete and a create at the name. (Were the name an
// A record set for IPs and a CNAME for a host name, a switch would delete one before creating the other, as Azure
// refuses a CNAME beside other records: the name would be unanswered for an API call, and resolvers may cache
// that NXDOMAIN for the zone's negative TTL.)
//
// Members of weight 0 are answered by none of these, yet read back from Get: the members (target, weight,
// addresses) and the ownership are in the metadata of the CNAME at the name; the per-member record sets carry
// the ownership only (so a change of weights alone is one write):
//
//	berth_owner     endpoint.OwnerText(owner), on every record set berth writes
//	berth_member<i> on the CNAME: "w=<weight>;t=<target, query-escaped>;a=<addr>,<addr>", member i in Set's
//	                order; past 256 characters (Azure's bound on a value) the rest is in berth_member<i>_1, _2, …
//
// Keys are lower-case letters, digits and '_' (Azure DNS keys are case-insensitive, may not hold spaces and must
// start with a letter); a record set carries at most 50 entries, and a record set at most 20 records: more is
// ErrBadMember. A record set at the name (CNAME, A, AAAA, TXT) or at _berth.<name> (A, AAAA) without berth_owner
// equal to the owner's text makes the name not owned (ErrNotOwned, Permanent), a foreign A alone at the name
// included. Other record types at the name (MX, SRV, CAA, …) are not read: the CNAME then fails with Azure's 409
// Conflict, a permanent error. An A/AAAA at the name that does carry the owner's text (the layout of development
// builds before the name was always a CNAME) is read by Get and replaced by the next Set; that once, it is deleted
// right before the CNAME is created, and the name is unanswered for one API call.
//
// Writes: Azure DNS has no batch, so a Set writes record set by record set, each with If-Match on the etag it
// read (If-None-Match "*" for a new one); a 412 (another writer in between) reads the name again and starts over,
// at most ConflictRetries times. Record set writes are synchronous: when the PUT returns, Azure's name servers
// answer the change (within seconds; there is no change status to poll). The order never points the name at a
// record set that is not there:
//  1. the per-member A and AAAA the CNAME is to point at, created or updated;
//  2. the CNAME at the name, updated in place (created by the first Set);
//  3. the record sets no longer needed (the per-member ones, once a host name wins) last, when the CNAME no
//     longer points at them.
//
// Delete removes the CNAME at the name first (the name is then unanswered in one step, never a CNAME to a record
// set already gone), then the per-member AAAA and A. These carry the ownership too: a Delete cut off in between
// leaves record sets that Get reads as the owner's record with no members, that Names lists, and that the next
// Delete removes. Names (endpoint.Lister) lists the zone's record sets and returns the names whose berth_owner is
// of the instance (for a per-member record set, the name under _berth.).
//
// Retries: the SDK retries throttling and 5xx itself (honouring Retry-After); what remains is retried here with
// backoff and jitter (Attempts, RetryBase, RetryMax, each call bounded by CallTimeout and ctx). A denied access,
// a missing zone, resource group or subscription, a bad request and a credential that gets no token are
// permanent, and say what to fix. Errors name the stable name and the record set, quote Azure's code and message,
// and never a token.
//
// Non-goals: weights (see Capabilities), alias record sets, private zones, creating the zone, health checks.
//
// Caller's duties (endpoint.Router's): one call at a time per name; a name inside the zone, never its apex nor
// under _berth.; waiting out the TTL after a member stops being answered before deleting its copy. On this router
// a migration's "shift in steps" has no intermediate steps: a member is answered or not, so the weights only
// decide which members are answered (weight > 0) and, with a host name, which one member is.
package azuredns
