// Package nomad is berth's provider for HashiCorp Nomad (target type "nomad"): each workload is one service job
// berth-<instance>-<env>-<workload> in the target's namespace and region, with one group "app" (count = replicas)
// and one docker task "app".
//
// Mapping: image, command → config.entrypoint, args → config.args, env, CPU millis → MHz (MHzPerCPU: 1 milli =
// 1 MHz) and memory → MemoryMB (rounded up, at least 10), ports as a group network (static host port for a public
// port, dynamic otherwise, `to` the container port, the labels in config.ports), a group service with the health
// check (http and tcp on Nomad's own service provider, a command as a Consul script check), an update stanza
// (max_parallel 1, health_check "checks" or "task_states", min_healthy_time, healthy_deadline, progress_deadline,
// auto_revert, canary 0) and job meta carrying the providers.Label* ownership labels, the spec hash and the spec
// (MetaSpec). Register always enforces the index (the job's JobModifyIndex, 0 for a create): a lost race re-reads.
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
//	if job is not running our spec hash and count {
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
// failures are retried with capped exponential backoff and jitter; 4xx answers are providers.Permanent.
package nomad
