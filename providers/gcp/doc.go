// Package gcp is berth's provider for Google Compute Engine (target type "gcp"): each spec of a workload becomes an
// instance template running its container on Container-Optimized OS, and each workload a regional managed instance
// group (MIG) that keeps Replicas instances of the current template.
//
// Mapping:
//
//   - template "berth-<instance>-<env>-<workload>-<spec hash>" (immutable, one per spec): COS image, the container in
//     the gce-container-declaration metadata (built by ContainerDeclaration only, as Google is replacing that agent),
//     ownership labels on the instances (berth.dev/x → berth-x, values lowercased to [a-z0-9_-]), the network tag
//     "<group>" (the firewall rules' target), network from the target; an ephemeral external IP when a port is
//     public (image pulls without Cloud NAT). The machine type is the target's machineType, else chosen from the
//     workload's resources (machine.go): the smallest E2 type that fits — e2-micro/small/medium counted at their
//     sustained 0.25/0.5/1 vCPU and 1/2/4 GiB, else e2-highcpu/standard/highmem-N when exact, else
//     e2-custom-<vCPU>-<MiB> (even vCPU 2-32, 0.5-8 GiB per vCPU in 256 MiB steps, at most 128 GiB); e2-small
//     without resources. A workload must fit a machineType setting of known size (Validate, at resources.cpu and
//     resources.memory, naming the type). When a template of that name exists
//     but holds something else (the target's machine type or network changed, or someone recreated it by hand), the
//     spec's template is the variant "<group>-<hash of spec hash and target settings>" (templateNames).
//
//   - group "berth-<instance>-<env>-<workload>" (names cut to 50 characters with a hash suffix): targetSize =
//     Replicas, one version on the template, distributionPolicy.zones from the target's zones setting or else the
//     region's zones (regions.get, read once per provider), update policy PROACTIVE / REPLACE / SUBSTITUTE with a
//     fixed maxSurge equal to the group's number of zones (at least 1; GCE wants 0 or at least the zone count) and
//     maxUnavailable 0, so a rollout is make-before-break (with an autohealing policy GCE counts a new instance as
//     available only once its health check passes, so unhealthy new instances hold the old ones in place). Zones are
//     fixed once the group exists; later patches
//     count the group's own zones. Groups have no labels: ownership is the name AND the description marker
//     "berth: instance=..; env=..; workload=..; target=..; spec=..".
//
//   - ports: the instance group's named ports, one "<protocol>-<port>" per port (regionInstanceGroups.setNamedPorts),
//     in the workload's order.
//
//   - previews (Owner.Preview set): the template's labels (so its instances') also carry berth-preview=<n> and
//     berth-head=<head> (a decimal and 40 hex digits, within GCP's 63), and the group's and template's description
//     markers end with "; preview=<n>; head=<head>" (the group's is patched to each new head). Objects of other
//     environments are written exactly as before. The longest names (a 40-character workload in pr-2147483647) are
//     cut like any other: base names at 50 with a hash (at most 58 for baseInstanceName), templates at 63.
//
//   - health checks (lb.go): an HTTP or TCP health check "<group>" (global healthChecks; interval, timeout and
//     retries in whole seconds, Compute Engine's defaults 5 s, 5 s and 2 sent explicitly, healthy threshold 1), the
//     group's autohealing policy on it (initialDelaySec = startPeriod), and the firewall rule "<group>-hc" letting
//     the health checkers (35.191.0.0/16, 130.211.0.0/22, and 209.85.152.0/22, 209.85.204.0/22 for passthrough
//     Network Load Balancers) reach the checked port on the group's tag. A replica's Health is its managed
//     instance's instanceHealth[].detailedHealthState (HEALTHY healthy, UNHEALTHY or TIMEOUT unhealthy, otherwise
//     starting), and Apply waits for every instance to be HEALTHY. A command health check is a Validate problem:
//     Compute Engine's checks are network probes and Container-Optimized OS runs no command for them.
//
//   - public ports: a regional external passthrough Network Load Balancer per workload: a reserved regional
//     external address "<group>" (the stable address; labels), per protocol a regional backend service
//     "<group>-tcp|udp" (EXTERNAL, the group's instance group, CONNECTION balancing, the health check: the
//     workload's, else a TCP check of the first public TCP port, used by the load balancer alone) and a forwarding
//     rule of the same name (the address, the protocol's public ports, all ports past 5; labels), and the firewall
//     rule "<group>-public" from 0.0.0.0/0 to the public ports. A UDP-only workload without a health check is a
//     Validate problem (a backend service needs one and GCE cannot probe UDP). Side objects carry the group's
//     marker with spec empty in their description (health checks, firewalls and backend services have no labels),
//     and berth changes or deletes only one whose name and marker are its own; one of berth's name without it
//     fails the Apply, permanent, naming it. Apply creates the health check, firewall rules and address before the
//     template and group, the backend services and forwarding rules after the group (they need its instance
//     group), patches what differs, remakes a forwarding rule that differs (it cannot change in place), and after
//     convergence deletes what the spec no longer needs. Delete goes forwarding rules → backend services → group →
//     templates → health check → firewall rules → address, the order GCE allows (resourceInUseByAnotherResource
//     otherwise).
//
// Endpoints (Observed.Endpoints): one per public port, the reserved address's IP with the port (COS runs the
// container on the host network: the host port is the port), the same across rollouts. The side objects are read
// only when a group has a public port or an autohealing policy: one list per collection (health checks, firewalls,
// addresses, backend services, forwarding rules) per List pass, filtered by the owner's name prefix. A port is
// public when its protocol's forwarding rule lists it (without that rule, the public firewall rule says). Missing
// names each side object the read-back spec needs that is gone or not berth's ("forwarding rule <name>",
// "backend service <name>", "address <name>", "health check <name>", "firewall <name>"): the plan shows it and
// Apply makes it again.
//
// Environments (providers.EnvironmentLister): one list of the region's groups, read by their description markers
// (instance group managers have no labels in Compute v1, and the group is what exists of a workload, even at zero
// instances): each environment of the instance on the target once, its preview number from the marker (0 when
// absent or malformed) and the greatest head among its groups.
//
// Secrets (Capabilities: kinds sops and gcp; no files). Container-Optimized OS offers no native way to resolve a
// Secret Manager reference nor to write a file from one, so berth resolves gcp references at apply, with the
// provider's own credentials (AccessSecretVersion over REST, settings.secretManagerEndpoint for tests; the version
// given, else latest; the payload's CRC32C checked), registers the value with schema/redact, and delivers it, like
// a SOPS value, as an env value of the gce-container-declaration metadata: the only path COS has. The template then
// holds the value in clear, readable by anyone with compute.instanceTemplates.get or compute.instances.get on the
// project and by any process on the VM (the metadata server). The berth-secrets metadata item names the variables'
// secrets with their fingerprints and the Secret Manager version read (never a value); labels never name them.
// List reads the variables back as SecretEnv names (the values are dropped where they are parsed) and
// Observed.SecretFingerprints from berth-secrets. A template is named by the spec hash folded with the versions
// read (templateKey), so a new version is a new template and a rolling update, make before break. For a reference
// to the latest version, List asks Secret Manager which version is latest now (GetSecretVersion: metadata, no
// value; it needs secretmanager.versions.get, e.g. roles/secretmanager.viewer) and reports the fingerprint changed
// when it is another, so the rotation shows in the plan; without that permission it is picked up by the next
// apply. PERMISSION_DENIED, NOT_FOUND, a disabled version and UNAUTHENTICATED fail the step at once, permanent,
// with Secret Manager's words and the fix, before anything is changed; throttling, UNAVAILABLE and INTERNAL are
// retried.
//
// Read-back (List): every managed field from the live objects, never from a copy berth stored. Image, command, args
// and env from the container declaration of the template the group really uses (versions[0], else
// instanceTemplate), parsed as YAML whoever wrote it; ports from the group's named ports (public when that template
// gives instances an external address); replicas from targetSize. A replica's spec hash is its template's
// spec-hash label when the template holds the target's settings (machine type, boot image, network), else empty:
// a group rolled by hand onto another machine type plans as replicas of another spec. Missing: "instance template
// <name>" when the group no longer runs the spec's template and it is gone. One pass costs the group list, one
// template list (by the owner's name prefix) and one listManagedInstances per group; a template outside that
// prefix (made by hand) is read once and cached by name across passes, as templates are immutable; with side
// objects, five lists more. Resources read back as the size of the template's machine type, health from the
// autohealing policy's health check. Normalize (providers.Normalizer) gives the same form: port names dropped,
// resources the size of the machine type chosen for them, the health check in whole seconds with the defaults.
//
// Main loop of Apply: ensure the health check, firewall rules and address; ensure the template (get the spec's names; use the one whose live fields — settings,
// container, external address, spec-hash label — match, else insert under the first free name and poll the global
// operation); get the group: insert it, or patch its versions/update policy/description when any differs from
// berth's (a second version, another template, a hand-edited policy), or resize it, or set its named ports, one
// mutation at a time, re-reading after each; then the backend services and forwarding rules; then poll the group
// (status.isStable) and listManagedInstances until exactly Replicas instances run the template with no action under
// way (and HEALTHY, with a health check); then delete the workload's other templates and the side objects the spec
// no longer needs. Every mutation carries a requestId derived from (instance, env, target, workload, spec hash,
// operation, the group's fingerprint or id), so a retry after a crash is deduplicated by GCE; side objects, which
// have names of their own, get one salted per Apply (a repeated insert is answered alreadyExists; a deterministic
// id would replay the operation that made an object since deleted by hand). Operations are polled
// by the provider at PollInterval (the SDK's Wait sleeps ≥ 1 s).
//
// Errors: 429, 403 rateLimitExceeded/quotaExceeded, 5xx, 409 (other than alreadyExists), 400 resourceNotReady and
// transport errors are retried with capped exponential backoff (RetryBase..RetryMax, RetryAttempts per call);
// other API errors are providers.Permanent.
//
// Credentials: the target's credentialsFile, else application default credentials, looked for in the SDK's order
// (GOOGLE_APPLICATION_CREDENTIALS, gcloud's application_default_credentials.json, the GCE metadata server). When
// there are none, New fails at once (ErrNoCredentials, permanent) listing the sources tried and how to provide one;
// nothing is retried. A token endpoint refusing the credentials (auth.Error that is not temporary), a metadata server
// with no token to give (a VM without a service account), a 401, a 403 forbidden (a missing IAM permission) and a 403
// accessNotConfigured (the API disabled) fail the call once, permanent, quoting Google's words (bounded, redacted)
// with the identity used and the fix (roles to grant, the API to enable, the login to refresh).
//
// Non-goals: command health checks, HTTPS/HTTP2/gRPC health checks, proxy load balancers and TLS, IPv6, zonal
// groups, autoscaling. A health check's change applies to every instance at once (GCE health checks belong to the
// group and the backend service, not to a version). Removing the health check from a workload clears the group's
// autohealing policy with a merge PATCH of its own (the SDK's PATCH cannot send an empty list), then deletes the
// health check. Fields berth never sets (listManagedInstancesResults, distributionPolicy.targetShape, labels of
// templates made by others) are left as they are.
//
// Cannot see: a template made by hand, deleted and made again under the same name while cached (names outside
// berth's prefix are read once); what the instances themselves run when they were changed one by one outside the
// group (per-instance configs).
//
// Caller's duties: set PollInterval and the retry fields before the first call if the defaults do not suit; Close
// the provider.
package gcp
