// Package conformance is the one behavioural suite every berth provider passes: Docker, the in-memory fake, and the
// cloud and on-prem providers to come. A provider's own test builds a Harness (how to make a provider for a target,
// which owner and images to use, and optional hooks to cause drift, plant look-alikes and inject faults) and calls Run.
//
// The cases are subtests, each on its own workload names, each deleting what it made at cleanup:
//
//	create           Apply; List shows N ready replicas of the spec hash; Probe answers from the spec
//	reapply          Apply twice: the second is a no-op (same replica IDs)
//	rollout          change image and env: new hash everywhere, old replicas gone, Probe answers the new spec
//	scale            1 → 3 → 1: replicas kept on scale-up keep their IDs; scale-down replaces nothing
//	endpoint         Observed.Endpoints has one host:port address per public port (a well-formed URL if any), none
//	                 for another port, the same after a second Apply; Probe answers
//	healthhold       2 ready replicas, then Apply of Unhealthy(a new version), cancelled after HoldFor: it never
//	                 succeeds, never makes a new replica ready, and at every look (List and Probe, during and
//	                 after) the old version keeps all its ready replicas and answers; applying it again converges
//	mbb1             1 replica rolled to a new version while List and Probe are watched: at every look a replica
//	                 is ready and Probe answers (old or new greeting); afterwards one replica of the new version
//	drift            Drift removes / stops a replica by hand; Apply restores N ready, untouched ones keep their IDs
//	fielddrift       through the planner and the engine: each Tamper hook edits one managed field (or deletes a
//	                 side object) through the runtime's own API; the plan shows it at that field, one apply of
//	                 that plan repairs it, the plan after it is empty
//	unmanaged        what berth does not manage (Unmanaged) is never in the plan and survives Apply
//	foreign          a value another manager owns inside a managed field (Foreign): the plan says it is kept and
//	                 it is, or the plan shows the change and the apply makes it
//	secret           GREETING from a secret (Secrets): served, held by nothing else of the runtime's, never read
//	                 back; a rotation rolls the workload and is served; no plan shows the value
//	delete           nothing left in List; a second Delete is no error
//	lookalike        an unowned object named like ours survives Apply and Delete and never shows in List
//	faults           Faults(n), then Apply with backoff until it succeeds (bounded tries): exactly N replicas
//	crash            Apply cancelled right after the first replica shows in List; a NEW provider (a restarted
//	                 berth) Applies again: exactly N ready replicas, no duplicates
//	ownership        List with another instance or environment does not show ours; Delete there leaves ours
//	status           Observed.Spec reads back image, env and replicas
//
// After every Apply of every case the suite plans again through reconciler.Engine, as the controller does, and
// waits for an empty plan: what the runtime reads back is what was asked, field by field (Observed.Spec against
// the desired workload in providers.Normalize form, plus the provider's own Normalizer).
//
// Every case uses a fresh provider from Harness.New (the provider is closed by the harness at the subtest's cleanup,
// the suite's Delete cleanup runs first). Waits poll List with a deadline (Harness.Timeout), never sleep for an
// outcome, and report the last observation on failure.
//
// Non-goals: performance figures (benchmarks belong to each provider), provider-specific settings, capabilities a
// provider does not declare (the reference workload only needs an HTTP health check and one public TCP port).
//
// Caller's duties (the harness): give each run a unique Owner.Instance; make Workload return the same kind of
// workload for every name (an HTTP service on 8080 with an HTTP health check, env GREETING echoed by GET /); make
// every object the suite's workloads create removable at cleanup even when a case fails half-way (a sweep by the
// instance label is the usual way); leave hooks nil when the runtime cannot do what they ask, which skips the cases
// that need them.
package conformance
