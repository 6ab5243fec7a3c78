// Package computeemu is an in-process emulator of the subset of the Compute Engine REST API v1 that berth's gcp
// provider uses, speaking the real wire protocol (JSON as encoded by the SDK's protojson types, the Google JSON
// error format, the OAuth2 token endpoint of a service-account key), so the real SDK clients talk to it over HTTP
// unchanged: only the endpoint and the credentials file differ.
//
// Operations implemented (paths under /compute/v1/projects/{project}/):
//
//	global/instanceTemplates                      GET (list, filter), POST (insert, requestId)
//	global/instanceTemplates/{name}               GET, DELETE (requestId)
//	global/operations/{name}                      GET
//	regions/{region}                              GET (its zones, Options.Zones)
//	regions/{region}/operations/{name}            GET
//	regions/{region}/instanceGroupManagers        GET (list, filter), POST (insert, requestId)
//	regions/{region}/instanceGroupManagers/{name} GET, PATCH (JSON merge of versions, updatePolicy, description,
//	                                              targetSize, listManagedInstancesResults,
//	                                              distributionPolicy.targetShape; fingerprint checked), DELETE
//	.../instanceGroupManagers/{name}/resize       POST ?size=
//	.../instanceGroupManagers/{name}/listManagedInstances POST
//	aggregated/instances                          GET (filter): every zone of the region as a scope, an empty one
//	                                              with the NO_RESULTS_ON_PAGE warning
//	zones/{zone}/instances, zones/{zone}/instances/{name} GET (list with filter, get): the groups' instances, each
//	                                              in a zone of its group's distribution policy (round robin), with
//	                                              its template's labels and network, an internal address
//	                                              (10.132.x.y) and, when the template has an access config, an
//	                                              external one (34.76.x.y) shown once it is RUNNING
//	global/healthChecks[/{name}]                  GET (list, filter), POST, PATCH (a JSON merge of the top-level
//	                                              fields), DELETE: HTTP and TCP checks (port, requestPath,
//	                                              interval 1-300, timeout at most the interval, thresholds 1-10;
//	                                              defaults 5/5/2/2 filled in)
//	global/firewalls[/{name}]                     GET (list, filter), POST, PATCH, DELETE (allowed protocols, CIDR
//	                                              source ranges; direction INGRESS, priority 1000, the default
//	                                              network filled in)
//	regions/{region}/backendServices[/{name}]     GET (list, filter), POST, PATCH, DELETE; EXTERNAL with TCP, UDP
//	                                              or UNSPECIFIED, exactly one existing health check, backends that
//	                                              are groups of the region with CONNECTION balancing
//	.../backendServices/{name}/getHealth          POST: each RUNNING instance of the group, HEALTHY or UNHEALTHY
//	                                              by the health hook (SetHealth)
//	regions/{region}/forwardingRules[/{name}]     GET (list, filter), POST, DELETE: the protocol matching the
//	                                              backend service's, at most 5 ports, one of ports, portRange
//	                                              and allPorts, an IPAddress reserved in the region (else an
//	                                              ephemeral one); labels
//	regions/{region}/addresses[/{name}]           GET (list, filter), POST, DELETE: an external IP (34.140.x.y)
//	                                              handed out, status RESERVED or IN_USE with its users; labels
//	regions/{region}/instanceGroups/{name}        GET (named ports, their fingerprint)
//	.../instanceGroups/{name}/setNamedPorts       POST (fingerprint checked when given); the group manager's
//	                                              output-only namedPorts show them
//	/token                                        OAuth2 JWT-bearer grant (RS256 assertion of a key made by
//	                                              ServiceAccountKey)
//
// Behaviour: the world advances one step per API request (or by Step): operations go RUNNING → DONE after
// Options.OpSteps steps and only then take effect; a group converges to its target size over steps (instances go
// PROVISIONING → RUNNING after Options.BootSteps, are deleted in Options.DeleteSteps), a version change is rolled out
// PROACTIVE with maxSurge/maxUnavailable (surge first, one old instance removed once the surplus is RUNNING), and
// stopped or deleted instances are repaired. A group with an autohealing policy (its health check must exist,
// initialDelaySec 0-3600, at most one policy) probes each RUNNING instance once a step through the health hook
// (SetHealth; every probe passes without one): UNKNOWN for its first step, then HEALTHY or UNHEALTHY, shown as
// listManagedInstances' instanceHealth[].detailedHealthState; one UNHEALTHY for more than Options.HealSteps steps
// is recreated (autohealing; the initial delay is not modelled in steps). In a rollout such a group counts an
// instance as available only when HEALTHY, so new instances that never pass hold every old one in place.
// Deleting a health check a backend service or an autohealing policy uses, a backend service a forwarding rule
// uses, an address a forwarding rule uses, or a group whose instance group is a backend is 400
// resourceInUseByAnotherResource. SetQuota caps a collection: an insert beyond it fails its operation with
// QUOTA_EXCEEDED (403, "Quota 'STATIC_ADDRESSES' exceeded. Limit: N.0 in region R."). A just-inserted template or group is missing from the first List that
// would show it (eventual consistency). requestId is honoured: the same id and request return the same operation,
// the same id with another request is a 400. Faults (Fail) answer the next n API calls with throttling (429 or 403
// rateLimitExceeded), server errors (503 backendError), conflicts (409), a denied permission (403 forbidden,
// "Required 'compute.instanceGroupManagers.list' permission for 'projects/p/regions/r/instanceGroupManagers'"), a
// disabled API (403 accessNotConfigured), or make the next operations slow.
//
// Validation as GCE answers it (400 with error.errors[].reason "invalid" or "required", unless noted), checked
// against the Compute v1 discovery document for the calls berth makes:
//   - names, label keys and values, network tags (RFC 1035), metadata keys ([a-zA-Z0-9-_]{1,128}, 512 KB in all),
//     known machine types (predefined ones, and custom types "[e2-|n1-|n2-|n2d-]custom-<vCPU>-<MiB>[-ext]" by
//     GCE's rules: memory in 256 MiB steps, E2 2-32 even vCPU with 0.5-8 GiB each and at most 128 GiB, N1 1 or
//     even vCPU with 0.9-6.5 GiB each unless -ext, ...), a boot disk first with a source image, at least one network interface (required), enum
//     values of disks[].type and accessConfigs[].type, unknown JSON fields (parseError);
//   - regional groups: distributionPolicy.zones must be zones of the region (Options.Zones, default
//     "<region>-b", "-c", "-d", as europe-west1's are) without duplicates; a group without zones spreads over all of
//     them (and reads back with them and targetShape EVEN); a fixed maxSurge or maxUnavailable must be 0 or at least
//     the group's number of zones ("Fixed updatePolicy.maxSurge for regional managed instance group has to be either
//     0 or at least equal to the number of zones.", the text GCE gives); not both 0; fixed and percent not both
//     set; replacementMethod RECREATE needs maxSurge 0 (GCE's text, seen for a percent value); zones cannot change
//     on PATCH;
//   - enum values as the discovery document lists them: updatePolicy.type PROACTIVE|OPPORTUNISTIC, minimalAction
//     and mostDisruptiveAllowedAction NONE|REFRESH|RESTART|REPLACE, replacementMethod SUBSTITUTE|RECREATE,
//     instanceRedistributionType PROACTIVE|NONE, distributionPolicy.targetShape EVEN|BALANCED|ANY|ANY_SINGLE_ZONE,
//     listManagedInstancesResults PAGELESS|PAGINATED. The lists start from the SDK's generated enums (computepb's
//     *_name maps), which drop a value a sibling enum of the same message declares (Type lacks PROACTIVE,
//     MinimalAction and MostDisruptiveAllowedAction are empty), plus the values the discovery document adds;
//   - named ports: RFC 1035 names, ports 1-65535;
//   - alreadyExists (409), notFound (404), a template in use (400 resourceInUseByAnotherResource), a stale
//     fingerprint on PATCH or setNamedPorts (412 conditionNotMet), a missing or unknown access token (401).
//
// Where the official definition is silent the emulator's wording is its own: the message texts of enum refusals
// ("Must be one of [...]"), of a zone outside the region, a duplicate zone, a zone change on PATCH, a boot disk not
// first, the metadata size and the named-port checks follow the shape of Compute's "Invalid value for field
// '<path>': '<value>'. ..." errors but were not captured from the real API; the discovery document gives the enum
// values and required fields, not the error texts. Whether GCE refuses BALANCED or ANY target shapes with proactive
// redistribution is not modelled.
//
// Simplified: instances of a regional group are not placed in zones (the zone count only drives validation), no
// traffic is carried (a load balancer is its resources and getHealth), firewall rules are not enforced, networks
// are not checked, PATCH of load-balancing resources replaces whole top-level fields, list filters are
// Compute's syntax in part (a bare "field eq|ne regexp", "field = value", "field != value", "field:value" or
// "field:*", or parenthesised terms joined by nothing, AND or OR, read left to right, on the resource's JSON field
// paths such as labels.<key>; anything else is 400 invalid), paging is ignored (one page), instances deleted out of band are recreated under a new name, the JSON merge of
// PATCH covers only the fields listed above, and token endpoint calls are never faulted.
package computeemu
