// Package nomademu is a wire-level emulator of the subset of Nomad's HTTP API that berth's Nomad provider uses. It
// is an httptest server speaking Nomad's JSON (the SDK's own api types), so the real
// github.com/hashicorp/nomad/api client talks to it unchanged; only the address differs.
//
// Endpoints: PUT /v1/jobs (register, with EnforceIndex), GET /v1/jobs (?prefix=, ?meta=true), GET /v1/job/:id,
// GET /v1/job/:id/allocations, GET /v1/job/:id/deployment (the latest), GET /v1/job/:id/deployments,
// GET /v1/job/:id/versions, PUT /v1/job/:id/plan (diff), DELETE /v1/job/:id (?purge=true).
//
// Behaviour that matters to a provider:
//   - Every answer carries X-Nomad-Index (one raft-like index for all state), X-Nomad-KnownLeader and
//     X-Nomad-LastContact. GET requests with ?index=N block until the index passes N or ?wait ends (a condition
//     variable; the wait runs on an injectable Clock, so tests control it).
//   - Time is a step counter: every request advances the scheduler one step (or only Step does, with
//     Options.Manual). Allocations go pending → running over StartSteps steps, then, inside a deployment, healthy
//     after HealthySteps more. Placements for a new job, a scale-up or a reschedule happen at once; a destructive
//     update replaces one allocation at a time (max_parallel 1): the old one is stopped, the new one placed, and the
//     next only once it is healthy. A change of count alone is an in-place update (allocations keep their IDs and
//     move to the new job version). Every new job version gets a deployment, running → successful; a newer version
//     cancels the running one.
//   - EnforceIndex as Nomad checks it, against the job's JobModifyIndex, answered with HTTP 500 and Nomad's
//     message ("Enforcing job modify index N: job exists with conflicting job modify index: M").
//   - Allocations of an image marked with FailImage fail; the deployment then fails and, with auto_revert, the job
//     is reverted to its last stable version (a new version), as Nomad does.
//   - Failed allocations are rescheduled (a replacement is placed outside any deployment, as Nomad does after a
//     deployment ended). KillAlloc (an allocation dies) and StopAlloc (an operator's `nomad alloc stop`) drift.
//   - Faults: Fail(n, kind): ServerError (500) and RateLimited (429) on the next n requests, Conflict (500 with
//     the enforce-index message, as if another writer had just registered) on the next n registers.
//   - ACL: with Options.Token set, a request without that X-Nomad-Token answers 403 "Permission denied".
//
// Simplified: one region, one node, no evaluations to read, no canaries, no Consul; service checks are not run (a
// deployment's allocations turn healthy after HealthySteps); the X-Nomad-Index is global, not per table; plan
// diffs are field-level at job level only; a deregister without purge keeps the job as stopped (dead).
package nomademu
