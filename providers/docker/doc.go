// Package docker is berth's provider for a single Docker engine: each replica of a workload is one container, and
// public ports are served by a TCP proxy inside the berth process.
//
// Ownership lives in the runtime: every container carries the providers.Label* labels (instance, environment,
// workload, target, spec hash, replica index) plus the applied spec (LabelSpec) and its public ports
// (LabelPublicPorts). Listing uses label filters only, and Delete only touches containers carrying the labels of
// the workload it is asked to delete. Names are deterministic (berth-<instance>-<env>-<workload>-<hash>-<index>),
// so a repeat after a crash finds what the first attempt made; a name held by a container berth does not own is a
// permanent error.
//
// Networking: one labelled bridge network per (instance, environment), where replicas answer to their workload's
// name. Every container port is also published on 127.0.0.1 on an engine-chosen port: berth probes HTTP and TCP
// health there, and the proxy forwards there. Container addresses are never used. Command health checks run as the
// engine's exec-form Healthcheck.
//
// Non-goals: pulling from registries (one bounded pull is tried for a missing image), volumes, UDP public ports,
// multi-host engines, restart policies (berth repairs drift itself; containers run with restart "no").
//
// Caller's duties: never run two Apply or Delete calls for the same workload at once (different workloads may run
// concurrently); Close the provider when done (it stops the proxies and the background sync; containers keep
// running, and a new Provider serves them again).
//
// Apply, in a sketch:
//
//	claim the public ports (start their proxies)     // a taken port fails here, before anything changes
//	make sure the image and the network exist
//	for each surplus replica, highest index first:   drain, stop (SIGTERM, grace), remove
//	for each index i < replicas:
//		keep the container of the new spec if it is running and gets ready
//		else create it (or adopt it after a crash), start it, wait until ready  // failure: remove it, old serves
//		add it to the proxies; then drain, stop and remove the others of index i
//	close the proxies of ports no longer public
//
// With providers.Options.Background (the controller sets it; one-shot commands do not), a background sync, every
// SyncInterval and at start, lists this instance's running containers of this target with public ports,
// probes them and sets each proxy's backends to the ready ones; it leaves alone workloads with an Apply or Delete
// in flight (or one that ran while it looked), so a replica being drained is never put back.
package docker
