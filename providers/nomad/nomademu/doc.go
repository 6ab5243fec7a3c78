// Package nomademu is a wire-level emulator of the subset of Nomad's HTTP API that berth's Nomad provider uses. It
// is an httptest server speaking Nomad's JSON (the SDK's own api types), so the real
// github.com/hashicorp/nomad/api client talks to it unchanged; only the address differs.
//
// Endpoints: PUT /v1/jobs (register, with EnforceIndex), GET /v1/jobs (?prefix=, ?meta=true, ?filter=),
// GET /v1/allocations (?prefix=, ?filter=, ?resources=true), GET /v1/job/:id,
// GET /v1/job/:id/allocations, GET /v1/job/:id/deployment (the latest), GET /v1/job/:id/deployments,
// GET /v1/job/:id/versions, PUT /v1/job/:id/plan (diff), PUT /v1/job/:id/scale (`nomad job scale`: a new version
// with the count changed, in place; 400 "job scaling blocked due to active deployment" while one runs),
// DELETE /v1/job/:id (?purge=true), PUT /v1/deployment/promote/:id (`nomad deployment promote`, All or Groups;
// refused with a 500 "Task group %q has %d/%d healthy allocations" while canaries are not all healthy, "can't
// promote terminal deployment", "no canaries to promote"; 404 "deployment not found"); and the variables API (variables.go): GET, PUT and DELETE /v1/var/:path
// (?cas=N), GET /v1/vars (?prefix=, ?namespace=*, ?per_page=, ?next_token=).
//
// Variables as the agent serves them (command/agent/variable_endpoint.go and the server's Validate, as read):
// a write answers the variable with its items and the write's X-Nomad-Index; a read answers X-Nomad-Index = the
// variable's ModifyIndex and 404 "variable not found" for a missing path (the api client's
// ErrVariablePathNotFound); a delete answers 204. Check-and-set: cas=0 means "must not exist", cas=N "must be at
// ModifyIndex N"; a mismatch is 409 with the current variable (items included, as for a caller that may read it)
// or, for a missing one, a zero variable with only Namespace and Path, and X-Nomad-Index = the conflict's
// ModifyIndex. Refusals: 400 "variable missing required Items object" and "can not parse cas: ..."; the
// validator's errors are plain RPC errors, so 500 with the text: "invalid path %q" (^[a-zA-Z0-9-_~/]{1,128}$),
// the reserved "nomad/" tree (only nomad/jobs/... and nomad/job-templates/<name>), "variables are limited to
// 64KiB in total size" (keys plus values). Lists carry metadata only, ordered by namespace then path, paged with
// X-Nomad-NextToken "<namespace>.<path>". DenyVariable answers 403 "Permission denied" for a path and leaves it out
// of lists; SetVariable and Variable are out-of-band hooks. Create and modify times are reproducible (one second
// per index from 2025-01-01). Not emulated: variable locks, the ACL policy model beyond Token and DenyVariable,
// per-table indexes (the index is global, as for jobs). Requests records the PUT bodies, items included.
//
// Templates (render.go): a job's task may carry template blocks, validated as the server's Template.Validate does
// (data or a source, a destination that stays in the allocation directory, change_mode noop, restart, signal or
// script, no signal for an env template, octal perms). When an allocation is placed, its first task's templates
// are rendered as the client would at task start: nomadVar "path" reads a variable of the job's namespace (any
// path not denied by DenyVariable: the workload identity's implicit policy and ACL policies are not modelled),
// secret "path" reads the Vault KV v2 data set with SetVaultSecret (.Data.data). An env template's KEY=VALUE lines
// join the task's env. AllocEnv and AllocFile show what an allocation's task started with (a test's view of what
// the container sees; no API answer carries it). A template that fails (a missing or denied variable) fails the
// allocation when it would start, where Nomad would keep it pending until the deployment's healthy deadline; the
// scheduler then places a replacement, rendered anew.
//
// Filters (filter.go): ?filter= takes the subset of go-bexpr, Nomad's filter language, that clients use (or, and,
// not, parentheses; ==, !=, is empty, is not empty, in, not in, contains, not contains, matches, not matches;
// selectors Field.Sub and Meta["key"]), evaluated on the whole job or allocation as the API answers it, a selector
// that finds nothing matching as in go-bexpr (only the negated operators and is empty hold); a bad expression is
// 400 "failed to create result paginator: failed to read filter expression: ...".
//
// Ports: a placed allocation is given its group's ports on the one node, bound on Options.NodeAddress
// (127.0.0.1 by default): static ones as asked, dynamic ones from 20000 up; the allocations list answers them
// (AllocatedResources.Shared: Ports with HostIP, Networks with IP) with ?resources=true, as Nomad does, and the
// job's allocations endpoint never does. Port collisions between allocations are not modelled.
//
// Behaviour that matters to a provider:
//   - Every answer carries X-Nomad-Index (one raft-like index for all state), X-Nomad-KnownLeader and
//     X-Nomad-LastContact. GET requests with ?index=N block until the index passes N or ?wait ends (a condition
//     variable; the wait runs on an injectable Clock, so tests control it).
//   - Time is a step counter: every request advances the scheduler one step (or only Step does, with
//     Options.Manual). Allocations go pending → running over StartSteps steps, then, inside a deployment, healthy
//     after HealthySteps more. Placements for a new job, a scale-up or a reschedule happen at once; without
//     canaries a destructive update replaces one allocation at a time (max_parallel 1): the old one is stopped,
//     the new one placed, and the next only once it is healthy. An allocation whose version differs from the new
//     one only in counts or update blocks is updated in place (it keeps its ID and moves to the new version), as
//     Nomad compares each allocation's job with the new one; a change of count alone is such a change. Every new
//     job version gets a deployment, running → successful; a newer version cancels the running one.
//   - Canaries, as Nomad's reconciler and deployment watcher do them: a version that replaces allocations, with
//     update.canary = n > 0, gets a deployment with DesiredCanaries n ("Deployment is running pending automatic
//     promotion" with auto_promote, "... but requires manual promotion" without); n canaries of the new version
//     are placed (named after the allocations they are to replace, DeploymentStatus.Canary set from the start,
//     their IDs in PlacedCanaries) while the old allocations keep running untouched. Once all n are healthy,
//     auto_promote promotes the deployment (Promoted, "Deployment is running"), or PUT /v1/deployment/promote does;
//     from the next step the canaries are the group's allocations: the old ones beyond the count are stopped ("alloc
//     not needed due to job update"), any left replaced one at a time, and the deployment succeeds when count
//     allocations of the version run healthy. An unhealthy allocation fails the deployment ("Failed due to
//     unhealthy allocations"); its canaries that were not promoted are stopped, and with auto_revert the last
//     stable version is registered again ("... - rolling back to job version N"), which the old allocations move
//     to in place. After a failed deployment of the job's current version no destructive update is made (only
//     missing allocations are placed), as Nomad's reconciler does.
//   - Health: FailImage makes an image's allocations fail after they start; FailChecks makes them run with checks
//     that never pass, judged unhealthy by their deployment after DeadlineSteps steps (the healthy deadline).
//     FailCheckPath(path) is the app's side of an http check: the app answers 404 on path (as the quickstart app
//     does on any path but /healthz), so an allocation placed with an http service check of that path runs with
//     checks that never pass, judged as for FailChecks when its update block's health_check is "checks" (the
//     default); with "task_states" checks do not count, as in Nomad.
//   - EnforceIndex as Nomad checks it, against the job's JobModifyIndex, answered with HTTP 500 and Nomad's
//     message ("Enforcing job modify index N: job exists with conflicting job modify index: M").
//   - Failed allocations are rescheduled (a replacement is placed outside any deployment, as Nomad does after a
//     deployment ended). KillAlloc (an allocation dies) and StopAlloc (an operator's `nomad alloc stop`) drift.
//   - Faults: Fail(n, kind): ServerError (500), RateLimited (429) and Timeout (no answer until the client gives
//     up; its context must end) on the next n requests, Conflict (500 with
//     the enforce-index message, as if another writer had just registered) on the next n registers,
//     VariableConflict (another writer writes the variable just before each of the next n check-and-set writes,
//     which then answer 409) on variables.
//   - ACL: with Options.Token set, a request without that X-Nomad-Token answers 403 "Permission denied".
//   - Register and plan canonicalize the job as the agent does (api.Job.Canonicalize: 100 MHz and 300 MB for
//     unset resources, the job's update block merged into the group's, service and check defaults), so a job read
//     back carries what Nomad would fill in; then they validate it as the server's validators do, for the fields
//     berth sends, and answer a refusal as Nomad does: HTTP 500 (the RPC error is not a coded one) with the
//     go-multierror text as a plain body ("1 error occurred:\n\t* Task group app validation failed: ..."). Checked:
//     job type (the api package's JobType constants), priority 1..100, group count >= 0, task name and driver,
//     resources (api.MinResources: CPU >= 1 MHz, MemoryMB >= 10; cpu and cores not both; memory_max >= memory),
//     network ports (static 1..65535 and unique, labels unique, `to` >= -1), services (an RFC 1123 name, provider
//     consul or nomad, port labels that exist), checks (types per provider: http and tcp on nomad, grpc, http,
//     script and tcp on consul; an http check's relative path, a script's command; interval and timeout set and
//     at least 1s; check_restart limit and grace >= 0) and the update block (health_check checks, task_states or
//     manual; max_parallel and canary >= 0; auto_promote only with canary > 0; min_healthy_time < healthy_deadline < progress_deadline when set;
//     stagger > 0).
//
// Simplified: one region, one node (so a canary's static port never collides with the old allocation's, where a
// real one-node cluster cannot place it), no evaluations to read, no progress deadline (a deployment that cannot
// place waits for ever), no Consul; service checks are not run (a
// deployment's allocations turn healthy after HealthySteps, unless FailChecks or FailCheckPath says otherwise); the X-Nomad-Index is global, not per table; plan
// diffs are field-level at job level only; a deregister without purge keeps the job as stopped (dead).
//
// Where the official definition is silent or is not the server's: Nomad validates a driver's config on the
// client, not at register (a docker task without an image is accepted and its allocations fail); the emulator
// refuses it at register instead. Driver names are not checked (Nomad accepts any and leaves the placement
// blocked when no node has the driver). The wording of the wrappers around the validators' messages ("Task group
// %s validation failed", "Service[%d] %s validation failed") follows the server's structs as read, not a
// documented contract; only the status, the plain body and the multi-error list form are relied upon.
package nomademu
