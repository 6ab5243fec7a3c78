// Package clouddns is the endpoint.Router of type "clouddns": stable names in one Google Cloud DNS managed zone,
// weighted by Cloud DNS's weighted round robin routing policy, through google.golang.org/api/dns/v1.
//
// Settings of a `dns:` entry: project and zone (the managed zone's name, not its DNS name) are required;
// credentialsFile (a service-account key or another Google JSON credentials file; application default
// credentials otherwise) and endpoint (the API base URL, for tests) are optional. Unknown keys are an error.
//
//	dns: "gcp-main": {type: "clouddns", project: "my-project", zone: "example-com"}
//
// Record layout of a name (say web.example.com.), all with the TTL of Set, written in one change:
//
//	web.example.com.                 CNAME  routingPolicy.wrr.items, one per member sorted by target:
//	                                        {weight: the member's weight, rrdatas: ["<target>._berth.web.example.com."]}
//	<target>._berth.web.example.com. A      the member's IPv4 addresses, sorted (AAAA for its IPv6 ones), or
//	                                 CNAME  the member's host name (a load balancer's), with its dot
//	_berth-owner.web.example.com.    TXT    "heritage=berth,..." (endpoint.OwnerText)
//
// Cloud DNS items have no identifiers, so a member's target is the first label of the per-member name its item
// points at; one scheme serves every mix of IP and host-name members (a name cannot hold a CNAME beside A
// records), at the cost of one more CNAME hop for clients. Cloud DNS answers one item per query, chosen by
// weight; a weight-0 item stays in the policy, so Get reads it back. Set with no members keeps the ownership
// record alone; Delete removes every set in one change, the ownership record listed last. Target names are DNS
// labels (berth's #Name). Names (endpoint.Lister) lists the zone and returns the names of the instance's
// ownership records.
//
// Ownership: Get, Set and Delete read the sets at the name and the ownership TXT first; records at the name
// without an ownership record, or an ownership record that is not exactly the owner's, are endpoint.ErrNotOwned
// and nothing is changed; so are records at a per-member name of a name that has no ownership record yet. With
// the ownership the owner's, the name and its per-member names are berth's: a Set replaces whatever it finds there
// (a stray per-member set included).
//
// Changes: a Set reads the name, computes the sets that differ, and sends one changes.create with the deletions
// (exactly as read) and additions; it then polls changes.get until the change is "done", with backoff and
// jitter, bounded by ctx. Setting what is served sends nothing. A change that loses a race with another writer
// (409 alreadyExists, 412 conditionNotMet, 404 on a deletion, 400 cnameResourceRecordSetConflict) is made again
// from a fresh read, a few rounds at most; when a retried change had taken effect although its answer was lost,
// Set waits for the zone's latest change (changes.list) to be done. Throttling (429, 403 rateLimitExceeded), 5xx
// and dropped connections are retried with capped exponential backoff and jitter; other 4xx are
// providers.Permanent. Errors name the entry, the operation and the name, never a credential.
//
// Non-goals: creating the managed zone, geo and primary-backup policies, health-checked items, DNSSEC, private
// zones, names at the zone apex.
//
// Caller's duties: one call at a time per name; names inside the zone; members with addresses (Cloud DNS cannot
// follow a providers.Watch).
package clouddns
