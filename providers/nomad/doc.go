// Package nomad is berth's provider for HashiCorp Nomad (target type "nomad"): each workload is one service job
// berth-<instance>-<env>-<workload> in the target's namespace and region, with one group "app" (count = replicas)
// and one docker task "app".
//
// Mapping: image, command → config.entrypoint, args → config.args, env, CPU millis → MHz (MHzPerCPU: 1 milli =
// 1 MHz) and memory → MemoryMB (rounded up, at least 10), ports as a group network (static host port for a public
// port, dynamic otherwise, `to` the container port, the labels in config.ports), a group service with the health
// check (http and tcp on Nomad's own service provider, a command as a Consul script check), an update stanza
// (max_parallel 1, health_check "checks" or "task_states", min_healthy_time, healthy_deadline, progress_deadline,
// auto_revert, canary 0) and job meta carrying the providers.Label* ownership labels and the spec hash. Register
// always enforces the index (the job's JobModifyIndex, 0 for a create): a lost race re-reads. Meta keys outside
// berth.dev/ and docker config keys berth does not set (privileged, volumes, ...) that someone else added are
// carried over into every register; other fields berth never sets (priority, constraints) are replaced by a
// register, which berth only makes when a managed field differs.
//
// Read-back: List and Apply read every managed field from the live job (live), never from a copy berth stored:
// the docker task's image, entrypoint, args and env, CPU (MHz, or reserved cores × 1000 millis) and MemoryMB, the
// group network's ports (static = public with the static value as host port, dynamic = internal), the group
// service's first check (type, path, port by label, interval, timeout, check_restart limit and grace) and the
// group's count. The read-back is lossy, so the provider is a providers.Normalizer: CPU in whole MHz and memory in
// whole MB, Nomad's defaults (100 MHz, 300 MB) for unset resources, ports without a protocol and named by their
// Nomad label, no start period without retries. Nomad keeps no side object for a job (the service registrations
// are Nomad's own, remade by its clients), so nothing is ever reported Missing.
//
// Non-goals: canaries and blue/green, Consul Connect, volumes, constraints and affinities, autoscaling, Vault,
// multi-region jobs; namespaces and ACL tokens are created by the operator.
//
// Caller's duties: one call per workload at a time (the reconciler's rule); the ACL token in the environment
// variable settings.tokenEnv names, with the policy of docs/providers-nomad.md.
//
// Main loop of Apply, in a sketch:
//
//	job := Info(id)                      // ours, nil, or someone else's (a permanent error)
//	if job is stopped, or its hash meta or any managed field (live(job)) differs from the desired workload {
//	    Register(job', EnforceIndex, job.JobModifyIndex)   // conflict → read again
//	}
//	loop: Info (changed under us? a failed deployment → providers.Permanent),
//	      LatestDeployment of the version (running → wait; failed → providers.Permanent),
//	      Allocations (blocking query on the last index, PollInterval long)
//	until Replicas allocations of the version run, healthy where a deployment judged them
//
// Delete is Deregister with purge, then waiting until the job is gone. List is one prefix listing with meta, then
// per owned job Info, LatestDeployment, Allocations (and Versions once per old version seen). Plan (an optional
// capability) is Nomad's plan with diff. Every call goes through one retry layer: 5xx, 429, 408, 409 and transport
// failures are retried with capped exponential backoff and jitter; 4xx answers, and the 500 with a multi-error
// body that Nomad answers a job its validation refuses, are providers.Permanent. A refused ACL token (401, 403)
// fails the call once with Nomad's words and what to fix: the token in settings.tokenEnv, or that no token is sent.
package nomad
