// Package azure is berth's provider for Azure Container Instances (ACI): each replica of a workload is one container
// group with one container, in the target's subscription, resource group and location.
//
// Ownership lives in Azure tags: berth.dev-instance, berth.dev-environment, berth.dev-workload, berth.dev-target,
// berth.dev-spec-hash, berth.dev-replica (providers.Label* with "/" mapped to "-", since Azure tag names cannot
// contain "/"), plus berth.dev-args (how many trailing command elements are args). List filters the resource
// group's groups by these tags; Delete only touches groups carrying the workload's tags. Names are deterministic:
// berth-<instance>-<env>-<workload>-<i>-<hash6> (lower case, cut to 63 characters with a hash), so a repeat after a
// crash finds the group the first attempt made, and ARM's PUT-by-name makes the create idempotent. A name held by a
// group berth does not own is a permanent error.
//
// Mapping: location, osType Linux, restartPolicy Always; image; command = command + args; env (names that look
// secret go as secureValue, which the API never returns: they read back empty); ports; CPU cores from millis and
// memoryInGB (GiB, steps of 0.1; 1 core / 1.5 GB when unset); HTTP or command health checks as readiness and
// liveness probes (whole seconds); a Public IP address with the public ports and, with dnsLabelPrefix, a DNS label
// <prefix>-<env>-<workload>-<i>-<hash6>. Each replica has its own address: ACI has no load balancer.
//
// Non-goals: TCP probes, internal ports (no virtual network), volumes, registry credentials, GPUs, Windows.
//
// Caller's duties: never run two Apply or Delete calls for the same workload at once. Validate at plan time.
//
// Apply, in a sketch:
//
//	list the workload's groups by tags
//	for i < replicas (one group at a time):
//		get the group berth-...-<i>-<hash>: not ours → permanent error; failed or stopped → delete it
//		missing → BeginCreateOrUpdate, poll the operation (Retry-After honoured), then poll Get until it runs
//		delete the other groups of index i (the old spec): make before break
//	delete the groups of indices >= replicas
//
// Errors: the SDK's retry policy retries 408/429/5xx with Retry-After; what escapes it (conflicts, failed
// operations, exhausted throttling) is retried by the provider with capped exponential backoff within
// RetryBudget; validation errors (InaccessibleImage, ResourceRequestsNotSupported, other 4xx) are
// providers.Permanent.
package azure
