// Package fake is an in-memory providers.Provider for tests of the reconciler, the controller and the CLI.
//
// It keeps the workloads it was asked to run in memory, keyed by owner (instance, environment), target and workload,
// and answers List from that state exactly like a real runtime answers from its ownership labels. Tests steer it:
//
//   - Hold(workload) makes Apply block (readiness delayed) until the returned release function is called or the
//     caller's context ends;
//   - FailNext(workload, n, permanent) makes the next n Apply calls of a workload ("" for any) fail before touching
//     state (the old version keeps serving, as with make-before-break);
//   - SetHealth(healthy) says which workloads' replicas fail their health check: an Apply of one is held like a
//     runtime's make-before-break rollout waiting on health (new replicas "unhealthy" beside the old, which keep
//     serving; Apply fails with ErrUnhealthy);
//   - RemoveReplica / StopReplica introduce drift by hand;
//   - Calls returns the log of every call; MaxInFlight and Overlaps tell about concurrency.
//
// Apply keeps the ready replicas of the same spec hash (their IDs stay) and adds new ones for the rest, as a runtime
// does, in one step (a List sees the old replicas or the new, never neither: make before break); public ports
// are reported as endpoints on 127.0.0.1 at their host port. It passes the shared suite in providers/conformance.
//
// Non-goals: simulating a real engine's timing or networking. Register adds the type "fake" to the providers
// registry; it is never done from init, so production binaries do not offer it unless asked.
package fake
