// Package docker is berth's provider for a single Docker engine: each replica of a workload is one container, and
// public ports are served by a TCP proxy inside the berth process.
//
// Ownership lives in the runtime: every container carries the providers.Label* labels (instance, environment,
// workload, target, spec hash, replica index), its public ports (LabelPublicPorts), its HTTP or TCP health check
// (LabelHealth) and the fingerprint of its fields as berth made it (LabelLiveHash). Listing uses label filters only,
// and Delete only touches containers carrying the labels of the workload it is asked to delete. Names are
// deterministic (berth-<instance>-<env>-<workload>-<hash>-<index>), so a repeat after a crash finds what the first
// attempt made; a name held by a container berth does not own is a permanent error.
//
// Previews: a preview environment ("pr-42") is an environment like any other, with its own containers, network
// and public host ports (the preview controller gives it ports of its own), so its List and Delete never see its
// base's containers, nor the base's its. Its containers and network also carry providers.LabelPreview (the
// number) and its containers providers.LabelHead (the head commit they were created from, when it is a commit
// ID). Environments (providers.EnvironmentLister) is one ContainerList of the instance's and target's labels:
// each environment once, its number when LabelPreview names that very environment, and the head of its newest
// container. Capabilities.HostRoutes is false: berth's own preview router routes host names to the endpoints.
// Names need no cut: the engine limits neither container nor network names (the alias is the workload name).
//
// Endpoints: one per public port, at the proxy's address (publicAddress and the public host port; a wildcard
// publicAddress reads as 127.0.0.1), once a running replica is served on it (its LabelPublicPorts names the
// mapping and the engine published the container port on 127.0.0.1). Each has a Watch (providers.WatchContainers)
// by which berth's edge follows the replicas itself, with no berth controller running: Engine is the host setting
// ("" for the environment's default; the client's address for NewWithClient), Labels the workload's four
// ownership labels (instance, environment, target, workload: every container of this workload on this target,
// whatever its spec hash, and no other), Port the container port, which the engine publishes on 127.0.0.1 of each
// container at a port of its choosing (NetworkSettings.Ports, read as the proxy sync reads it), and HealthPath the
// path of the workload's HTTP check when it checks that port, else "". A watch finds the replicas an Apply is
// starting and draining too: the edge checks each itself (the engine's port forwarder accepts a TCP connection
// for a running container even when nothing listens in it). Equal watches are one pointer, so an unchanged
// Endpoint compares equal (==) from one List to the next; callers must not modify one.
//
// A Swarm target on the same engine may run the same workload at once (a migration from one to the other): its
// tasks' containers carry the same instance, environment and workload labels but their own target, so neither
// List, the sync, a Watch nor the clean-up of the environment network counts them. The two targets' proxies can
// serve one host port only at two distinct publicAddress values, neither a wildcard (127.0.0.1 and the host's
// address, say): an Apply whose address is taken fails before anything changes, naming the address and the
// setting.
//
// Read-back: List reads each workload from its containers' own fields (ContainerInspect, and ImageInspect of the
// container's image, once per image ID): image is Config.Image, the reference the container was created with;
// command is Config.Entrypoint and args Config.Cmd, each unless it equals the image's own; env is Config.Env minus
// the entries equal to the image's own (the engine copies those in at create); ports are the container ports
// published on 127.0.0.1 (HostConfig.PortBindings: berth publishes every port it runs; a port the image only
// EXPOSEs is not berth's); resources are HostConfig.NanoCPUs and Memory (a CpuQuota set by hand is not seen); the
// health check is the engine's Config.Healthcheck for command checks (unless it is the image's HEALTHCHECK), and
// for HTTP and TCP checks, which berth probes itself, the definition its prober runs, LabelHealth: the prober and
// the read-back use that one source. Public ports are served by berth's in-process proxy, whose configuration is
// LabelPublicPorts (the background sync serves from it), and are read back from it. Replicas is the number of
// owned containers. Normalize gives the same form for a desired workload: port names dropped (the engine stores
// none), ports sorted, health defaults filled in, and values equal to the image's defaults left out when the image
// is known (from a List or an Apply that used it; a rollout plan to an image never seen may show such a value once).
//
// When the replicas disagree, Observed.Spec is the live workload of the first replica (by index) whose fields no
// longer hash to its LabelLiveHash, so a hand edit of one replica shows as drift even when the others are intact;
// when no replica was edited, the first replica of the majority hash. Apply compares each replica's live fields
// with the desired ones, whatever its hash label says, and replaces one that differs make-before-break: it is
// renamed aside while it serves, the new replica is started under the deterministic name and gets ready, and then
// the edited one is drained and removed. The environment network is the only side object on the engine; the
// engine refuses to remove it while replicas are attached, so Observed.Missing stays empty. What berth does not
// manage (another network connected by hand, the restart policy changed with docker update, other labels) is not
// read and not reverted. Replicas made before LabelHealth existed read as having no HTTP or TCP check: the first
// Apply after the upgrade replaces them once, make-before-break.
//
// Secrets (Capabilities.SecretKinds ["sops"], SecretFiles true): a single engine has no secret store of its own
// outside swarm mode, and a store reference (AWS, Vault, ...) cannot be resolved by the Docker engine, so only
// values berth decrypted itself are delivered, at create: an env secret is an entry of the container's Config.Env
// (`docker inspect` shows it there, as the engine's API does to anyone with access to its socket), and a file
// secret is copied into the created container before it starts (CopyToContainer of a tar at /, missing parent
// directories made by the engine), mode 0400, owned by the image's user when it is numeric or root (a user by name
// is refused: berth cannot read the image's /etc/passwd). The file lives in the container's writable layer, on the
// engine host's disk, as the environment does in the container's config, and goes with the container. Labels hold
// names and fingerprints only: LabelSecrets, as JSON, from which List reads Spec.SecretEnv, Spec.Files and
// Observed.SecretFingerprints; the variables it names are left out of Spec.Env (a value is never read back) and
// out of what LabelLiveHash hashes, so no label can be used to test a guess of a value. A secret variable removed
// from a container by hand reads as gone (drift); a value changed by hand, in the environment or the file, is not
// seen, since berth never reads a value back. A rotated secret is a new spec hash: the
// replicas are replaced one by one, make-before-break, through the proxy, like any other change.
//
// Networking: one labelled bridge network per (instance, environment), where replicas answer to their workload's
// name. Every container port is also published on 127.0.0.1 on an engine-chosen port: berth probes HTTP and TCP
// health there, and the proxy forwards there. Container addresses are never used. Command health checks run as the
// engine's exec-form Healthcheck.
//
// Images (Capabilities.PullsImages): an image not in the engine's store (for a reference pinned by digest,
// "name:tag@sha256:...", that digest; another image under the tag does not count) is pulled before anything else
// of the Apply changes, with Desired.ImageAuth as the X-Registry-Auth of the pull (base64url JSON of username,
// password and serveraddress; anonymous when nil; a credential for another registry than the image's is refused).
// Each attempt is bounded by PullTimeout and ctx, its progress drained; a failure that may pass (registry
// unreachable, rate limited, a dropped stream) is retried with backoff within PullAttempts; not found,
// unauthorized, an invalid reference or an unknown registry host is a Permanent error naming the image, and the
// replicas running stay as they are. The container is created with the reference as given, so Config.Image, and
// Observed.Spec.Image, read back exactly as berth wrote them, digest included. The engine treats registries on
// 127.0.0.0/8 as insecure (plain HTTP) by default; others need TLS or the engine's insecure-registries setting.
// The password is never logged nor in an error; the engine keeps no credential after the pull.
//
// Offline (providers.RegisterOffline): the settings are parsed and the Capabilities and Validate are the
// Provider's own (capabilities, validator), which depend on no setting.
//
// Non-goals: volumes, UDP public ports, multi-host engines, restart policies (berth repairs drift itself;
// containers run with restart "no").
//
// Caller's duties: never run two Apply or Delete calls for the same workload at once (different workloads may run
// concurrently); Close the provider when done (it stops the proxies and the background sync; containers keep
// running, and a new Provider serves them again).
//
// Apply, in a sketch:
//
//	claim the public ports (start their proxies)     // a taken port fails here, before anything changes
//	make sure the image (pulled with ImageAuth when missing) and the network exist
//	for each surplus replica, highest index first:   drain, stop (SIGTERM, grace), remove
//	for each index i < replicas:
//		keep the container of the new spec if its live fields read as desired, it runs and gets ready
//		else move the one holding the name aside (rename when it serves, remove when not),
//		     create it (or adopt it after a crash), start it, wait until ready  // failure: remove it, old serves
//		add it to the proxies; then drain, stop and remove the others of index i
//	close the proxies of ports no longer public
//
// With providers.Options.Background (the controller sets it; one-shot commands do not), a background sync, every
// SyncInterval and at start, lists this instance's running containers of this target with public ports,
// probes them and sets each proxy's backends to the ready ones; it leaves alone workloads with an Apply or Delete
// in flight (or one that ran while it looked), so a replica being drained is never put back.
package docker
