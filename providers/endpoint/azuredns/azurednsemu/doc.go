// Package azurednsemu is a wire-level emulator of the Azure DNS record set API of one zone, for tests: the real
// armdns client (RecordSetsClient) works against it unchanged, and it answers DNS queries from the zone on a
// loopback port (dnstest), so tests see what clients of the name would.
//
// The API: Resource Manager's
//
//	/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/dnsZones/{zone}/{A|AAAA|CNAME|TXT}/{name}
//
// with GET, PUT (CreateOrUpdate, If-Match / If-None-Match), PATCH (Update, If-Match) and DELETE (If-Match), and the
// lists .../{zone}/recordsets, .../{zone}/all and .../{zone}/{type} ($top, $recordsetnamesuffix, nextLink paging),
// at api-version 2018-05-01 (the one armdns v1.2.0 sends). Record set calls are synchronous in Azure DNS (200 or
// 201 with the record set; no long-running operation), and so they are here: a change is answered in DNS as soon
// as the PUT or DELETE returns.
//
// What it enforces, as Azure DNS does: a bearer token; the api-version; the subscription, resource group and zone
// (404 SubscriptionNotFound, ResourceGroupNotFound, ParentResourceNotFound); etags (412 PreconditionFailed for an
// If-Match that differs, If-Match on a record set that does not exist, If-None-Match "*" on one that does); a
// CNAME never beside another record type at a name (409 Conflict, both orders); at most 20 records in a record set
// and one in a CNAME's; TTL 0..2147483647; IPv4 in A, IPv6 in AAAA; names and CNAME targets that are DNS names;
// metadata of at most 50 entries with keys of letters, digits and '_', '-', '.', starting with a letter or '_',
// ending with a letter, digit or '_', at most 512 characters, values at most 256 (keys are case-insensitive: two
// that differ only in case are refused). Errors have Resource Manager's body, {"error":{"code","message"}}.
//
// Non-goals: other record types (MX, SRV, CAA, NS, PTR, SOA), alias record sets (targetResource), private zones,
// zone management, the propagation delay to Azure's name servers (not observable through the API).
//
// Fault injection: Fail(op, faults...) queues faults for the next requests of an operation (get, put, patch,
// delete, list): Throttle (429 TooManyRequests with Retry-After), ServerError (500), Unavailable (503), and
// Concurrent (another writer changes the record set first, so an If-Match the client read no longer matches).
// Plant writes a record set by hand (a record berth did not write); Changes is the log of every change with its
// time; Requests the requests received, bodies included, for golden checks.
//
// Sketch:
//
//	emu := azurednsemu.New(sub, rg, "example.com", azurednsemu.Options{})
//	srv := httptest.NewTLSServer(emu) // the SDK sends bearer tokens over TLS only
//	dns, _ := emu.ServeDNS("127.0.0.1:0")
//	// armdns.NewRecordSetsClient(sub, cred, &arm.ClientOptions{ClientOptions: policy.ClientOptions{
//	//	Cloud: <ResourceManager at srv.URL>, Transport: srv.Client()}})
//	ips, _ := dnstest.Lookup(ctx, dns.Addr(), "web.example.com")
package azurednsemu
