// Package aws is berth's provider for Amazon ECS on Fargate (target type "aws"): each workload is one ECS service
// in the target's cluster, running tasks of a task definition family, both named berth-<instance>-<env>-<workload>.
//
// Mapping: one task definition revision per spec (FARGATE, awsvpc, task CPU/memory from the Fargate table, one
// container "app": image, entryPoint = command, command = args, environment, secrets, port mappings, a command
// health check in exec form), tagged with the providers.Label* ownership tags and the spec hash. The service
// (CreateService with a deterministic clientToken, launch type FARGATE, the target's subnets, security groups and
// public IP choice, minimumHealthyPercent 100 / maximumPercent 200, circuit breaker with rollback, propagateTags
// TASK_DEFINITION) carries the ownership tags. Updates are UpdateService with the new revision or count: ECS
// itself brings the new tasks up before it stops the old ones, and replaces stopped tasks (drift).
//
// Secrets (Capabilities: kinds "aws" and "sops", environment variables only: ECS has no secret files) become the
// container's secrets[] — {name: VAR, valueFrom: ARN} — which ECS resolves at task start with the task execution
// role (it needs secretsmanager:GetSecretValue, ssm:GetParameters and kms:Decrypt on the keys), so no value is in
// the task definition. An AWS reference (a Secrets Manager ARN, with ECS's optional :json-key:version-stage:
// version-id tail, or an SSM parameter ARN) is passed as it is: the value never transits berth, and berth sees a
// rotation only when the reference changes (pin a version id). A SOPS value, which berth decrypted, is kept in a
// Secrets Manager secret of berth's, berth/<instance>/<env>/<workload>/<secret>, tagged with the ownership tags
// (CreateSecret; a rotation is PutSecretValue of a new version whose id is derived from the secret's fingerprint),
// and valueFrom pins that version (ARN:::version-id; Fargate platform 1.4.0 or later), so a rotation is a new revision rolled make-before-break
// while the old tasks keep their version. The docker label berth.dev/secrets records per variable the secret's
// name, fingerprint and valueFrom (never a value): List reads Spec.SecretEnv and Observed.SecretFingerprints
// back from it and from secrets[] (a valueFrom changed by hand reads back as itself, a change of the variable).
// Berth's secrets that a replaced revision named and the new one does not are deleted after the rollout, all of
// the workload's on Delete (ForceDeleteWithoutRecovery; only secrets carrying the workload's tags). The Secrets
// Manager endpoint is the region's, AWS_ENDPOINT_URL_SECRETS_MANAGER, or the target's secretsEndpoint.
//
// Previews: a preview environment's objects (Owner.Preview != 0) carry berth.dev/preview (the pull request's
// number) beside the ownership tags — the service, every task definition revision (so its tasks, by
// propagateTags) and berth's Secrets Manager secrets — and berth.dev/head (Desired.Preview.Head, only when it is
// a commit id) as created: a revision keeps the head it was registered at, and the service is retagged
// (TagResource) whenever its head differs, so a new head shows even where it leaves the spec as it was. A preview is its own environment (pr-N) in the same
// cluster, so its names (berth-<instance>-pr-N-<workload>, cut to 255 with a hash suffix past ECS's limit, as
// every name is; a name that fits is never changed) and List and Delete are scoped like any other's.
// Environments (providers.EnvironmentLister) reads the same ListServices and DescribeServices (tags, 10 at a time)
// as List and nothing per service: each environment of the instance and target once, its preview number and the
// head of its most recently deployed service.
//
// Public ports and HTTP/TCP health checks go through Elastic Load Balancing v2. Each public port of a workload
// has a target group (target type ip, as awsvpc needs; protocol TCP or UDP; named b-<workload>-<port><t|u>-<hash>,
// at most 32 characters) attached to the ECS service (loadBalancers: the group, container "app", the container
// port), and a listener on that port forwarding to it, on a network load balancer: by default berth's own, one
// per workload (b-<workload>-<hash>, internet-facing, or internal with internalLoadBalancer; the target's subnets
// and security groups), deleted with the workload; with the target's loadBalancer setting (a name or ARN), the
// target's own network load balancer, where berth adds a listener per public port and never takes a port another
// listener holds (a permanent error before anything is made). Names are deterministic, with a hash of the
// workload's identity; the identity is in the tags (the ownership tags, berth.dev/port, and on a target group
// berth.dev/health-check), and a load balancer or target group of berth's name without the workload's tags is an
// error, never used. The VPC of the target groups is settings.vpcId, else EC2's DescribeSubnets of the first
// subnet (once). The ELBv2 endpoint is the region's, AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2, or the target's
// elbv2Endpoint.
//
// A workload's HTTP or TCP check is the health check of its target groups (path, port, a 2xx/3xx matcher for
// HTTP; interval, timeout and retries as healthy and unhealthy thresholds, each within ELBv2's bounds: values under
// its minima — 5 s, 2 s, 2 — are raised to them, values over its maxima — 300 s, 120 s, 10 — and a timeout longer
// than the interval are Validate problems), and health.startPeriod is the service's healthCheckGracePeriodSeconds.
// A target group checks only behind a listener, so the checked port must be a public TCP port of the workload
// (Validate says so otherwise); a workload with public ports and no such check gets berth's TCP check of each
// traffic port (10 s, 3 tries), which reads back as no check. Command checks stay ECS container health checks.
// Readiness: a task is ready when it runs, its container check (if any) passes and every target group of the
// service finds its address healthy (DescribeTargetHealth); ECS itself waits for that before it stops old tasks
// (minimumHealthyPercent 100, maximumPercent 200), stops tasks that fail the load balancer's checks and, through
// the circuit breaker, rolls a version whose tasks keep failing back (Apply fails permanently, the old version
// serving). A change of the check is a ModifyTargetGroup, so it applies to the running tasks at once (a target
// group is shared by the workload's versions).
//
// Observed.Endpoints has one per public port whose listener exists: the load balancer's DNS name and the port (a
// stable address, whatever tasks come and go). A target group or listener deleted by hand, or berth's load
// balancer, is named in Observed.Missing ("target group <name>", "listener <lb>:<port>", "load balancer <name>")
// and the next Apply makes it again (a new target group is attached to the service by UpdateService, a new
// deployment). Which ports are public is also the container's docker label berth.dev/public-ports
// ("8080,53/udp"), read back from the revision. A port no longer public loses its listener and target group after
// the rollout that detaches them; the last one takes berth's load balancer with it.
//
// Read-back: List reads ListServices (no tag filter exists), DescribeServices with tags in batches of 10, then,
// per owned service, the spec from the service's CURRENT task definition revision (DescribeTaskDefinition, cached
// by ARN within and across passes: revisions are immutable) — image, entryPoint, command, environment, port
// mappings, the command health check (ECS's defaults where a hand-made revision leaves a field out), an HTTP or
// TCP check from the target groups (the one tagged berth.dev/health-check=spec), the task size (or the
// container's own smaller cpu or hard memory limit) — and replicas from the service's desiredCount; the replicas
// from ListTasks and DescribeTasks; and once per pass ListTaskDefinitionFamilies of the owner's families: a
// service whose family has no ACTIVE revision left (deregistered by hand) reports "task definition <family>" in
// Observed.Missing. Nothing berth stores is read back for the plan (no spec label). The read-back is lossy where
// ECS is (Normalize): public ports are on their container port, ports lose names ECS cannot store, durations are
// whole seconds within ECS's (command) or ELBv2's (HTTP, TCP) bounds, retries of an HTTP or TCP check at least
// 2, resources are the Fargate size that holds them.
//
// Not seen: fields berth does not set (other containers, log configuration, memoryReservation, service
// settings such as service discovery, tags of others, listener rules and attributes, target group attributes
// such as the deregistration delay) — Apply leaves the service's alone, but a
// registration berth makes to repair drift does not copy them into the task definition; the service's network
// configuration (subnets, security groups, assignPublicIp) is the target's and not compared; a revision
// deregistered while another ACTIVE revision of the family (registered by hand, never run) remains; berth's
// Secrets Manager secret deleted or given a version by hand, and a new version of a referenced secret behind an
// unpinned ARN (ECS resolves it only when a task starts).
//
// Non-goals: application load balancers, TLS listeners and certificates, DNS records, service discovery,
// autoscaling, secret files, EC2 capacity, clusters or networks (the target names existing ones; its security
// groups decide who reaches a public port). Validate reports what ECS with ELBv2 would refuse or cannot check (an
// HTTP/TCP check of a port that is not public, timings out of bounds, one container port for both TCP and UDP, a
// UDP public port without an HTTP/TCP check), so that the plan refuses it instead of sending it.
//
// Caller's duties: one call per workload at a time (the reconciler's rule); credentials from the AWS default chain;
// the cluster, subnets, security groups and roles exist.
//
// Main loop of Apply, in a sketch:
//
//	svc := DescribeServices(name)              // ours, or nil; someone else's is a permanent error
//	td  := svc's revision or the family's latest, if ACTIVE, ours, our hash and its fields equal the spec
//	       (both described afresh), else RegisterTaskDefinition
//	lbs := for public ports: the load balancer (found, or CreateLoadBalancer), per port a target group
//	       (DescribeTargetGroups, CreateTargetGroup or ModifyTargetGroup of its check) and a listener
//	if svc == nil { CreateService(clientToken, lbs) } else if td, desiredCount or lbs differ { UpdateService }
//	poll DescribeServices + ListTasks/DescribeTasks (+ DescribeTargetHealth) every PollInterval until
//	    one deployment, on td, COMPLETED, Replicas running and ready (FAILED → providers.Permanent)
//	DeregisterTaskDefinition(every other ACTIVE revision of the family berth owns)
//	delete the listeners and target groups the service no longer names
//
// So a field edited by hand (a new revision pointed at from the console, even one that kept berth's spec-hash
// tag), a desired count changed by hand and a deregistered revision are each repaired by one Apply, make before
// break.
//
// Every call goes through one retry layer (the SDK's own retryer is off): throttling (ECS's ThrottlingException,
// ELBv2's Throttling), 5xx, timeouts, conflicts and ELBv2's ResourceInUse (a target group being let go) are retried with capped exponential backoff and jitter; invalid requests and exceeded quotas
// (LimitExceededException) come back as providers.Permanent.
//
// Credentials: the SDK's default chain, wrapped so that a failure of the chain itself is told from a failed call.
// No credentials found (nothing in the environment, the shared files or the target's profile, no web identity, no
// container credentials, no instance role or instance metadata disabled), a role or token refused, credentials ECS
// does not recognise (UnrecognizedClientException, InvalidSignatureException, ExpiredTokenException) and denied
// access (AccessDeniedException) are permanent after one attempt: the error quotes the SDK's or ECS's words,
// bounded and redacted, lists the chain's sources as they stand in the environment, and says how to provide
// credentials or which permissions to grant. Only a credential endpoint (STS, SSO, container) answering with
// throttling or a 5xx, or not answering before the call's timeout, is retried.
package aws
