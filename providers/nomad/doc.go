// Package nomad is berth's provider for HashiCorp Nomad (target type "nomad"): each workload is one service job
// berth-<instance>-<env>-<workload> in the target's namespace and region, with one group "app" (count = replicas)
// and one docker task "app".
//
// Mapping: image, command → config.entrypoint, args → config.args, env, CPU millis → MHz (MHzPerCPU: 1 milli =
// 1 MHz) and memory → MemoryMB (rounded up, at least 10), ports as a group network (static host port for a public
// port, dynamic otherwise, `to` the container port, the labels in config.ports), a group service with the health
// check (http and tcp on Nomad's own service provider, a command as a Consul script check), an update stanza
// (max_parallel 1, health_check "checks" or "task_states", min_healthy_time, healthy_deadline, progress_deadline,
// auto_revert, canary = count with auto_promote: see Rollouts) and job meta carrying the providers.Label* ownership labels and the spec hash (and, for
// a preview environment, berth.dev/preview with its number and berth.dev/head with the head it was registered from). Register
// always enforces the index (the job's JobModifyIndex, 0 for a create): a lost race re-reads. Meta keys outside
// berth.dev/ and docker config keys berth does not set (privileged, volumes, ...) that someone else added are
// carried over into every register; other fields berth never sets (priority, constraints) are replaced by a
// register, which berth only makes when a managed field differs.
//
// Secrets (SecretKinds sops, nomad and vault; SecretFiles): the task gets template blocks, never a value. Secret
// environment variables are one template with env = true rendered at secrets/env.env, one line per variable;
// a secret file is a template rendered at its path, which must lie under /secrets/ or /local/ (the task directory
// mounts of the docker driver: Nomad's templates write nowhere else; other paths are refused at plan time), with
// perms 0400. A SOPS value goes into a Nomad variable berth owns at the job's own path, nomad/jobs/<job-id> (items:
// secret name → value), which the job's tasks read with their workload identity and no ACL policy; it is written
// with check-and-set on its ModifyIndex (0 for a create; a lost check-and-set reads again) before the register, so
// the new allocations find it when they start. A nomad reference reads the named variable and key (berth never
// writes it: the job's workload identity needs a policy for paths outside its own), a vault reference reads
// `{{ with secret "path" }}` field .Data.data.<key> (KV v2) through a vault block (the cluster's default role).
// Each template line carries a comment naming its secret, read back into Spec.SecretEnv and Spec.Files; the job meta
// berth.dev/secrets holds "name=fingerprint" pairs, read back into Observed.SecretFingerprints. Templates render
// once (once = true, change_mode noop): running allocations keep what they started with, and a rotated SOPS value is
// a new spec hash, hence a new job version rolled out through canaries, make before break (see Rollouts). A new value in a store berth does not read (a nomad or vault reference) reaches the tasks at their next
// start only. A job that no longer reads berth's variable has it deleted after its rollout (a crash between the
// two leaves it until the workload is deleted); Delete removes it after the job. List reports it Missing when it is gone (from the variables' metadata, never their items), and Apply
// writes it again. Nomad refuses paths over 128 characters and items over 64 KiB with a 500, taken as permanent; an
// environment value cannot span lines (the env template's format): deliver such a secret as a file.
//
// Read-back: List and Apply read every managed field from the live job (live), never from a copy berth stored:
// the docker task's image, entrypoint, args and env, CPU (MHz, or reserved cores × 1000 millis) and MemoryMB, the
// group network's ports (static = public with the static value as host port, dynamic = internal), the group
// service's first check (type, path, port by label, interval, timeout, check_restart limit and grace) and the
// group's count. The read-back is lossy, so the provider is a providers.Normalizer: CPU in whole MHz and memory in
// whole MB, Nomad's defaults (100 MHz, 300 MB) for unset resources, ports without a protocol and named by their
// Nomad label, no start period without retries. Nomad keeps no side object for a job (the service registrations
// are Nomad's own, remade by its clients), so the only side object reported Missing is berth's variable.
//
// Rollouts are make before break for every count, one replica included: the update stanza asks for as many
// canaries as replicas (canary = count, auto_promote; none and no auto_promote for count 0, which Nomad refuses).
// A change that replaces allocations (image, command, env, ports, checks, resources, templates, job meta, hence
// any new spec hash) makes Nomad place count canaries of the new version beside the old allocations, which keep
// running; when every canary is healthy (its checks passing for min_healthy_time) Nomad promotes them and only
// then stops the old allocations. A canary that fails, or is not healthy by the healthy deadline, fails the
// deployment: Nomad stops the canaries and (auto_revert) registers the last stable version again, which the old
// allocations move to in place, so the old version serves throughout; Apply fails permanently naming the
// deployment, Nomad's description and each unhealthy canary. A change of count alone (and of the update stanza
// with it) is an in-place update: no canary, nothing restarts. A live job whose update stanza does not place
// berth's canaries (registered by an older berth, or edited) is registered again, in place. The price: a rollout
// runs twice the allocations for a while, and a canary of a workload with a public (static) port needs a node
// where that port is free, so on a cluster with fewer spare nodes than replicas such a canary is not placed and
// the deployment fails at its progress deadline, the old version still serving.
//
// Non-goals: canaries other than the rollout's own (a partial canary, manual promotion), Consul Connect, volumes, constraints and affinities, autoscaling, Vault
// roles and policies (the vault block uses the cluster's default), multi-region jobs; namespaces and ACL tokens are created by the operator.
//
// Caller's duties: one call per workload at a time (the reconciler's rule); the ACL token in the environment
// variable settings.tokenEnv names, with the policy of docs/providers-nomad.md.
//
// Main loop of Apply, in a sketch:
//
//	job := Info(id)                      // ours, nil, or someone else's (a permanent error)
//	if SOPS secrets: Peek(nomad/jobs/id); if its items differ, write them with cas=ModifyIndex (conflict → read again)
//	if job is stopped, or its hash meta or any managed field (live(job)) differs from the desired workload {
//	    Register(job', EnforceIndex, job.JobModifyIndex)   // conflict → read again
//	}
//	loop: Info (changed under us? a failed deployment, e.g. reverted → providers.Permanent),
//	      LatestDeployment of the version (running, canaries placed or promoted → wait; failed → providers.Permanent
//	      naming the unhealthy canaries),
//	      Allocations (blocking query on the last index, PollInterval long)
//	until Replicas allocations of the version run, healthy where a deployment judged them
//	if the job read berth's variable and the new one does not: delete the variable
//
// Endpoints: one per public port, the static port on the address an allocation's port is bound to (the node's
// host network address; a wildcard reads as 127.0.0.1), from a running allocation, read from the allocations list
// with resources (GET /v1/allocations?resources=true&filter=JobID == "<id>"), which List uses in place of the job's
// allocations endpoint (that one answers no ports). Environments (providers.EnvironmentLister) is one GET /v1/jobs
// with meta, the prefix berth-<instance>- and a filter expression on the instance and target meta.
//
// Delete is Deregister with purge, then waiting until the job is gone, then deleting berth's variable. List is one
// prefix listing with meta, then per owned job Info, LatestDeployment, the allocations list (and Versions once per old
// version seen), and one listing of the variables' metadata when a job reads berth's variable. Plan (an optional
// capability) is Nomad's plan with diff. Every call goes through one retry layer: 5xx, 429, 408, 409 and transport
// failures are retried with capped exponential backoff and jitter; 4xx answers, the 500 with a multi-error body
// that Nomad answers a job its validation refuses, and the 500 refusing a variable's path or size are
// providers.Permanent. A refused ACL token (401, 403)
// fails the call once with Nomad's words and what to fix: the token in settings.tokenEnv, or that no token is sent.
package nomad
