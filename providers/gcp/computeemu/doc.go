// Package computeemu is an in-process emulator of the subset of the Compute Engine REST API v1 that berth's gcp
// provider uses, speaking the real wire protocol (JSON as encoded by the SDK's protojson types, the Google JSON
// error format, the OAuth2 token endpoint of a service-account key), so the real SDK clients talk to it over HTTP
// unchanged: only the endpoint and the credentials file differ.
//
// Operations implemented (paths under /compute/v1/projects/{project}/):
//
//	global/instanceTemplates                      GET (list), POST (insert, requestId)
//	global/instanceTemplates/{name}               GET, DELETE (requestId)
//	global/operations/{name}                      GET
//	regions/{region}/operations/{name}            GET
//	regions/{region}/instanceGroupManagers        GET (list), POST (insert, requestId)
//	regions/{region}/instanceGroupManagers/{name} GET, PATCH (JSON merge of versions, updatePolicy, description,
//	                                              targetSize; fingerprint checked), DELETE
//	.../instanceGroupManagers/{name}/resize       POST ?size=
//	.../instanceGroupManagers/{name}/listManagedInstances POST
//	/token                                        OAuth2 JWT-bearer grant (RS256 assertion of a key made by
//	                                              ServiceAccountKey)
//
// Behaviour: the world advances one step per API request (or by Step): operations go RUNNING → DONE after
// Options.OpSteps steps and only then take effect; a group converges to its target size over steps (instances go
// PROVISIONING → RUNNING after Options.BootSteps, are deleted in Options.DeleteSteps), a version change is rolled out
// PROACTIVE with maxSurge/maxUnavailable (surge first, one old instance removed once the surplus is RUNNING), and
// stopped or deleted instances are repaired. A just-inserted template or group is missing from the first List that
// would show it (eventual consistency). requestId is honoured: the same id and request return the same operation,
// the same id with another request is a 400. Faults (Fail) answer the next n API calls with throttling (429 or 403
// rateLimitExceeded), server errors (503 backendError), conflicts (409), or make the next operations slow.
//
// Validation as GCE answers it: resource names, label keys and values, known machine types, a boot disk image,
// regional update policies (fixed maxSurge/maxUnavailable 0 or at least Zones, not both 0), unknown JSON fields,
// alreadyExists (409), notFound (404), a template in use (400 resourceInUseByAnotherResource), a stale fingerprint on
// PATCH (412 conditionNotMet), a missing or unknown access token (401).
//
// Simplified: no zones (a regional group's instances live in the region), no health checks or autohealing policy,
// no named ports, no firewall or networks (network names are not checked), list filters and paging are ignored (one
// page), instances deleted out of band are recreated under a new name, the JSON merge of PATCH covers only the fields
// berth sends, and token endpoint calls are never faulted.
package computeemu
