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
// Public ports: awsvpc gives each task an elastic network interface of its own, so a port answers at the task's
// address on its container port, no host port is shared and none is chosen (a HostPort asked for, such as the
// one a preview is given, reads back as the port; ECS refuses a host port other than the container port). Which
// ports are public is the container's docker label berth.dev/public-ports ("8080,53/udp"), read back from the
// revision. Observed.Endpoints has one per public port, at one running task (the first ready one by ARN, else the
// first running one) and the container port: with the target's assignPublicIp, the public IP of the task's
// interface, which only EC2 tells (each List asks ec2:DescribeNetworkInterfaces once per workload with public
// ports; the EC2 endpoint is the region's or AWS_ENDPOINT_URL_EC2); without it, the private IPv4 address ECS reports in
// the task's ElasticNetworkInterface attachment (reachable inside the VPC), no EC2 call. A port is left out until
// a task has such an address, and while EC2 fails (a missing permission, an outage: logged, List goes on). The
// address is a task's, not a stable one: it changes when the task is replaced (a load balancer's would not; berth
// manages none).
//
// Read-back: List reads ListServices (no tag filter exists), DescribeServices with tags in batches of 10, then,
// per owned service, the spec from the service's CURRENT task definition revision (DescribeTaskDefinition, cached
// by ARN within and across passes: revisions are immutable) — image, entryPoint, command, environment, port
// mappings, the health check (ECS's defaults where a hand-made revision leaves a field out), the task size (or the
// container's own smaller cpu or hard memory limit) — and replicas from the service's desiredCount; the replicas
// from ListTasks and DescribeTasks; and once per pass ListTaskDefinitionFamilies of the owner's families: a
// service whose family has no ACTIVE revision left (deregistered by hand) reports "task definition <family>" in
// Observed.Missing. Nothing berth stores is read back for the plan (no spec label). The read-back is lossy where
// ECS is (Normalize): public ports are on their container port, ports lose names ECS cannot store, HTTP and TCP
// checks are not sent, durations are whole seconds within ECS's bounds, resources are
// the Fargate size that holds them.
//
// Not seen: fields berth does not set (other containers, log configuration, memoryReservation, service
// settings such as healthCheckGracePeriodSeconds, tags of others) — Apply leaves the service's alone, but a
// registration berth makes to repair drift does not copy them into the task definition; the service's network
// configuration (subnets, security groups, assignPublicIp) is the target's and not compared; a revision
// deregistered while another ACTIVE revision of the family (registered by hand, never run) remains; berth's
// Secrets Manager secret deleted or given a version by hand, and a new version of a referenced secret behind an
// unpinned ARN (ECS resolves it only when a task starts).
//
// Non-goals: load balancers, service discovery, autoscaling, secret files, EC2 capacity, clusters
// or networks (the target names existing ones; its security groups decide who reaches a public port). HTTP and
// TCP health checks and an address that outlives a task need a load balancer: Validate reports the checks, as it
// reports what ECS would refuse (health timings out of its bounds, one container port for both TCP and UDP), so
// that the plan refuses them instead of sending them.
//
// Caller's duties: one call per workload at a time (the reconciler's rule); credentials from the AWS default chain;
// the cluster, subnets, security groups and roles exist.
//
// Main loop of Apply, in a sketch:
//
//	svc := DescribeServices(name)              // ours, or nil; someone else's is a permanent error
//	td  := svc's revision or the family's latest, if ACTIVE, ours, our hash and its fields equal the spec
//	       (both described afresh), else RegisterTaskDefinition
//	if svc == nil { CreateService(clientToken) } else if td or desiredCount differ { UpdateService }
//	poll DescribeServices + ListTasks/DescribeTasks every PollInterval until
//	    one deployment, on td, COMPLETED, Replicas running and ready (FAILED → providers.Permanent)
//	DeregisterTaskDefinition(every other ACTIVE revision of the family berth owns)
//
// So a field edited by hand (a new revision pointed at from the console, even one that kept berth's spec-hash
// tag), a desired count changed by hand and a deregistered revision are each repaired by one Apply, make before
// break.
//
// Every call goes through one retry layer (the SDK's own retryer is off): throttling, 5xx, timeouts and conflicts
// are retried with capped exponential backoff and jitter; invalid requests and exceeded quotas
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
