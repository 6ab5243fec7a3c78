// Package reconciler turns desired state (a rendered schema.Config) into running workloads: it plans, applies and,
// in the controller, keeps doing so as the source and the runtime change.
//
// The public surface is small:
//
//   - Engine.Plan observes every target of the configuration (providers.Provider.List), evaluates the policies and
//     the targets' capabilities, and diffs: a Plan of create, update, delete and migrate steps with reasons and
//     field-level changes. A plan is blocked by a policy deny, a capability problem, or the prune safety (deleting
//     every workload of an environment, or more than MaxDeleteShare of them, unless AllowPruneAll).
//   - Engine.Apply carries out exactly a plan's steps with bounded concurrency, one operation in flight per
//     (environment, workload) and a timeout per step. Engine.Destroy removes a whole environment on purpose.
//   - Controller.Run is the level-based loop below; Status, Ready and Trigger serve the CLI and the web page.
//
// Images of the registries a configuration declares (`registries:`) are pinned while planning: each tag is
// resolved to the digest it names (Options.Registry, a registry.Client by default, with the registry's password
// read from its SOPS secret), and the workload runs host/name:tag@sha256:... — that reference is hashed, shown
// (Plan.Images, Step.Image), given to the providers (with Desired.ImageAuth where the runtime pulls itself) and
// read back. Apply resolves the tags again and refuses a plan whose tag moved (ErrStalePlan). A missing image or
// refused credentials is a problem at the workload's image; a registry that keeps failing fails the pass. Images of
// other registries are used as written, and their registries never contacted.
//
// Non-goals: the reconciler keeps no truth of its own. What runs is read back from the providers on every pass
// (ownership labels); the store (package store) only keeps history, and losing it loses nothing that runs.
//
// Caller's duties: build the Engine with the provider factory and policy options, give the controller a
// repos.Source, call Engine.Close and Source.Close when done, and never share a Controller between two Run calls.
//
// The controller's loop, in a sketch:
//
//	for {
//		snapshot := source.Fetch()            // cheap when nothing moved
//		cfg := Load(snapshot.Dir)             // a broken revision changes nothing; errors go to status
//		for env whose branch is ours {
//			plan := engine.Plan(cfg, env)     // re-reads observed state: drift shows up here
//			if plan.Blocked() { status Blocked; continue }
//			drop steps of workloads in backoff
//			engine.Apply(plan)                // failures back off per workload: 1 s, 2 s, ... 5 min, ±10%
//		}
//		wait for the interval (±10%), a source change, Trigger, or the end of a backoff
//	}
package reconciler
