// Package endpoint is the contract of stable names: a Router serves one name (a DNS name in a zone, or a
// host:port of berth's on-prem edge) in front of the copies of a workload's public port on one or more targets,
// each a Member with a weight. The reconciler's migration moves a workload from target to target by adding the new
// copy's member, shifting the weights in steps and removing the old member, with Set calls on the router.
//
// Routers: route53, clouddns and azuredns (subpackages, each on its cloud's SDK, with a wire-level emulator that
// also answers DNS queries on a loopback port) and edge (berth's own TCP edge, a process of its own). They
// register a Factory from init, like providers; a `dns:` entry of the configuration (schema.Config.DNS) names the
// type and its settings.
//
// Ownership: every name berth serves has an ownership record (OwnerText, in a TXT record at OwnerRecordName for
// zones whose record sets carry no tags, or in a record set's metadata). A name with records but without berth's
// ownership record for the same owner is never changed: ErrNotOwned, which the plan reports.
//
// Non-goals: health checking in DNS (the reconciler only adds ready copies and watches them while it shifts),
// traffic policies, geo or latency routing, DNSSEC.
//
// Caller's duties: one call at a time per name; members whose addresses the runtime reported; waiting out the TTL
// and the drain after a member stops being answered before deleting its copy.
package endpoint
