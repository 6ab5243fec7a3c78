// Package azuredns is the "azuredns" router: it serves stable names as record sets of one Azure DNS zone, through
// the armdns RecordSetsClient (api-version 2018-05-01).
//
// Settings of a `dns:` entry: subscriptionId, resourceGroup and zone (the zone's DNS name, "example.com"), all
// required; credential (default, environment, workload-identity, managed-identity or cli, as the azure target's;
// default "default"); endpoint (Resource Manager's base URL, for tests and sovereign clouds). The identity needs
// DNS Zone Contributor on the zone. Berth manages record sets, never the zone.
//
// Azure DNS record sets have no weights (Capabilities.Weighted is false). What a name serves, from the members
// of weight > 0 (all of them when every weight is 0):
//   - every member is IP addresses: one A record set at the name with all their IPv4 addresses (and an AAAA one
//     with the IPv6 ones), each once, answered all together in rotating order;
//   - a member is a host name: a CNAME record set at the name (it holds one record) to the member of the greatest
//     weight, the later one in the Set call's order on a tie: its host name, or, when that member is IP addresses,
//     the per-member name _berth.<name>, whose A (and AAAA) record set holds them.
//
// Members of weight 0 are answered by none of these, yet read back from Get: the members (target, weight,
// addresses) and the ownership are in the metadata of every record set berth writes for the name (the A, AAAA,
// CNAME and per-member ones):
//
//	berth_owner     endpoint.OwnerText(owner)
//	berth_member<i> "w=<weight>;t=<target, query-escaped>;a=<addr>,<addr>", member i in Set's order; past 256
//	                characters (Azure's bound on a value) the rest is in berth_member<i>_1, _2, …
//
// Keys are lower-case letters, digits and '_' (Azure DNS keys are case-insensitive, may not hold spaces and must
// start with a letter); a record set carries at most 50 entries, and a record set at most 20 records: more is
// ErrBadMember. A record set at the name (A, AAAA, CNAME, TXT, or at _berth.<name> A, AAAA) without berth_owner
// equal to the owner's text makes the name not owned (ErrNotOwned, Permanent). Other record types at the name
// (MX, SRV, CAA, …) are not read: a CNAME then fails with Azure's 409 Conflict, a permanent error.
//
// Writes: Azure DNS has no batch, so a Set writes record set by record set, each with If-Match on the etag it
// read (If-None-Match "*" for a new one); a 412 (another writer in between) reads the name again and starts over,
// at most ConflictRetries times. Record set writes are synchronous: when the PUT returns, Azure's name servers
// answer the change (within seconds; there is no change status to poll). The order:
//  1. the per-member record sets a CNAME is to point at;
//  2. for a CNAME: the A and AAAA at the name are deleted, and the CNAME is created right after (Azure refuses a
//     CNAME beside other records); for A/AAAA: the CNAME is deleted, and the A and AAAA are created right after;
//     so a switch between A and CNAME leaves the name unanswered (NXDOMAIN) for one API call, the least Azure
//     allows, and everything else (reads, checks, per-member sets) happens before the delete;
//  3. the record sets no longer needed (an old per-member name) last.
//
// Delete removes the per-member record sets, then the AAAA, then the record set that answers the name and
// carries its ownership (CNAME or A) last. Names (endpoint.Lister) lists the zone's record sets and returns the
// names whose berth_owner is of the instance.
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
