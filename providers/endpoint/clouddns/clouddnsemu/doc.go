// Package clouddnsemu is an in-process emulator of the subset of the Cloud DNS v1 REST API that berth's clouddns
// router uses, one managed zone of one project, speaking the real wire protocol (the JSON of
// google.golang.org/api/dns/v1, the googleapi JSON error shape, the OAuth2 token endpoint of a service-account
// key), so the real SDK client talks to it over HTTP unchanged: only the endpoint and the credentials file differ.
// It also answers DNS queries for its zone on a loopback port (dnstest), so tests see what clients would.
//
// Operations (paths under /dns/v1/projects/{project}/managedZones/{zone}):
//
//	""                 GET   managedZones.get: name, dnsName, nameServers
//	/rrsets            GET   resourceRecordSets.list: name (exact), type (needs name), maxResults, pageToken;
//	                         sorted by name and type; the apex SOA and NS made with the zone are listed too
//	/changes           POST  changes.create: deletions then additions, atomically; the change is "pending" for
//	                         Options.Pending (or SetPending) polls of changes.get, then "done"
//	/changes           GET   changes.list: sortBy changeSequence, sortOrder, maxResults, pageToken
//	/changes/{id}      GET   changes.get
//	/token                   OAuth2 JWT-bearer grant of a key made by ServiceAccountKey (at the server's root)
//
// Errors, in the googleapi JSON shape ({"error": {"code", "message", "errors": [{"domain", "reason",
// "message"}]}}), as Cloud DNS answers them:
//   - 409 alreadyExists: an addition of a name and type that exists (after the change's deletions);
//   - 404 notFound: a deletion of a set that does not exist; an unknown project, zone or change;
//   - 412 conditionNotMet: a deletion that does not match the existing set exactly (ttl, rrdatas in any order,
//     the routing policy's items in order with their weights and rrdatas);
//   - 400 invalid: a name that is not a fully qualified name inside the zone, an unknown type, a ttl out of
//     0..2147483647 (or missing: "required"), rrdata that does not parse for its type, a CNAME rrdata that is not
//     fully qualified, a set with both or neither of rrdatas and routingPolicy, a routing policy other than wrr,
//     a weight out of 0..MaxWeight, a CNAME with more than one record (per item), a plain deletion of the apex SOA
//     or NS; 400 cnameResourceRecordSetConflict: a change that leaves a CNAME beside other types at a name;
//   - 403 quotaExceeded: more records in a set than Options.RecordsPerSet, more items than ItemsPerPolicy, more
//     additions or deletions in one change than ChangeSize;
//   - 401 authError: a request without a token the /token endpoint gave (unless Options.AllowAnonymous);
//   - injected faults (Fail): 429 rateLimitExceeded, 503 backendError, 500 internalError, or any Fault, before the
//     operation runs or (Fault.After) after a changes.create took effect, as a lost response does.
//
// DNS (ServeDNS) answers from the changes that are done (a pending change is not served yet): a weighted set gives
// one item's records per query, chosen by weight with a seeded random source (dnstest.Pick); a CNAME is answered
// for any type, followed inside the zone; names of the zone it lacks are NXDOMAIN, names that exist without the
// asked type an empty answer, names outside the zone REFUSED, and an injected fault of OpDNS SERVFAIL.
//
// Non-goals: other managed-zone operations, geo and primary-backup routing, health checks, DNSSEC signatures,
// private zones, the rrsets create/patch/delete shortcuts.
//
// Sketch:
//
//	emu := clouddnsemu.New("proj", "main", "example.com.", clouddnsemu.Options{Pending: 2})
//	hs := httptest.NewServer(emu)
//	key, _ := emu.ServiceAccountKey(hs.URL, "berth@proj.iam.gserviceaccount.com") // a credentialsFile
//	dnsSrv, _ := emu.ServeDNS("127.0.0.1:0")
//	emu.Fail(clouddnsemu.OpCreateChange, clouddnsemu.RateLimited)
package clouddnsemu
