// Package gcp is berth's provider for Google Compute Engine (target type "gcp"): each spec of a workload becomes an
// instance template running its container on Container-Optimized OS, and each workload a regional managed instance
// group (MIG) that keeps Replicas instances of the current template.
//
// Mapping:
//   - template "berth-<instance>-<env>-<workload>-<spec hash>" (immutable, one per spec): COS image, the container in
//     the gce-container-declaration metadata (built by ContainerDeclaration only, as Google is replacing that agent),
//     the workload as JSON in the berth-spec metadata (read back by List), ownership labels on the instances
//     (berth.dev/x → berth-x, values lowercased to [a-z0-9_-]), machine type and network from the target; an
//     ephemeral external IP when a port is public.
//   - group "berth-<instance>-<env>-<workload>" (names cut to 50 characters with a hash suffix): targetSize =
//     Replicas, one version on the template, update policy PROACTIVE / REPLACE / maxSurge 3 (the zone count, as GCE
//     requires for regional groups) / maxUnavailable 0, so a rollout is make-before-break. Groups have no labels:
//     ownership is the name AND the description marker "berth: instance=..; env=..; workload=..; target=..; spec=..".
//
// Main loop of Apply: ensure the template (get, else insert and poll the global operation); get the group: insert
// it, or patch its version/description, or resize it, one mutation at a time, re-reading after each; then poll the
// group (status.isStable) and listManagedInstances until exactly Replicas instances run the template with no
// action under way; then delete the workload's older templates. Every mutation carries a requestId derived from
// (instance, env, target, workload, spec hash, operation, the group's fingerprint or id), so a retry after a crash
// is deduplicated by GCE. Operations are polled by the provider at PollInterval (the SDK's Wait sleeps ≥ 1 s).
//
// Errors: 429, 403 rateLimitExceeded/quotaExceeded, 5xx, 409 (other than alreadyExists), 400 resourceNotReady and
// transport errors are retried with capped exponential backoff (RetryBase..RetryMax, RetryAttempts per call);
// other API errors are providers.Permanent.
//
// Non-goals: health checks and autohealing (COS has no container health check; readiness is the VM RUNNING), load
// balancers and firewall rules (no stable public address), CPU/memory limits (the machine type is the limit),
// zonal groups, autoscaling.
//
// Caller's duties: set PollInterval and the retry fields before the first call if the defaults do not suit; Close
// the provider. Credentials: application default credentials, or the target's credentialsFile.
package gcp
