// Package swarm is berth's provider for Docker Swarm (target type "swarm"): each workload is one replicated service
// berth-<instance>-<env>-<workload>, created and updated through a manager's engine API.
//
// Mapping: the service and its containers carry the providers.Label* ownership labels and the spec hash. Image (see
// Images below), command, args, env, CPU and memory limits, a command health
// check (exec form), an HTTP or TCP health check probed by berth (below), restart policy any, one overlay network per
// (instance, environment) berth-<instance>-<env> with the workload name as alias, public ports published as
// Provider.Publish says (below; internal ports are reached over the network), UpdateConfig {parallelism 1, start-first,
// rollback on failure, Monitor}, RollbackConfig start-first.
//
// Public ports: PublishIngress publishes each at HostPort on every node through swarm's routing mesh, which needs IPVS
// in the nodes' kernels; PublishHost publishes each task's port in host mode at a port the engine picks on its node,
// and berth serves HostPort itself from a TCP proxy in its process (providers/docker/proxy, at settings.publicAddress,
// default 0.0.0.0) that forwards to the tasks that run and pass their HTTP or TCP check, at node address:published
// port; the service label LabelPublicPorts ("hostPort:port/protocol,...") names what it serves. settings.publish
// chooses; without it New detects: host mode when the engine is on this machine (a local socket or a loopback address)
// and this kernel has no IPVS (not loaded, built in nor a module of the running release), else ingress (an engine
// elsewhere is assumed to have it); Provider.Publish can be set before the first call. A service published the other
// way is updated (a start-first rollout). In host mode: Apply claims the proxies' ports before anything changes and,
// while it waits, moves the backends to new tasks as they get ready (older tasks keep serving until swarm stops them);
// Delete closes them; with providers.Options.Background a sync every SyncInterval serves the ports of every host-mode
// service of the instance and target from what runs (after a restart of berth, or when swarm replaced a task), and
// closes the proxies of services gone. The ports answer only while a berth process holding the target runs (the
// controller), as with the Docker provider; UDP public ports need the routing mesh (Validate reports one in host
// mode; internal UDP ports work either way).
//
// Images (Capabilities.PullsImages): the nodes pull. Without Desired.ImageAuth the image is used as given, with no
// registry query, so a node-local image works; an update of the spec then sends an empty credential, which
// replaces one the manager held. With it, Apply first looks the image up in its registry through the manager
// (DistributionInspect with the credential): unauthorized or unknown is a permanent error naming the image,
// before the service changes. The service is then created or updated with the credential as X-Registry-Auth and
// QueryRegistry, as `docker service create --with-registry-auth` does: the manager keeps the credential with the
// service's spec (in its raft store, encrypted at rest; no API returns it) for the nodes' pulls, and pins a tag
// to the digest it names ("app:1@sha256:..."), unless the reference is pinned already (berth's plans pin it). A
// scaling-only update sends no credential: the manager keeps its own. A credential for another registry than the
// image's is refused. A pull that fails on a node makes the task fail; a rollout is then rolled back by swarm and
// Apply's error quotes the task's error ("No such image: ..."). The password is never logged nor in an error.
// A credential rotated while the spec stays the same reaches the manager with the next change of the spec.
//
// HTTP and TCP health checks are probed by berth itself, as the Docker provider does, not by the engine: an engine
// HEALTHCHECK runs a program inside the container, and an image FROM scratch has no shell, curl or nc to run (berth
// cannot add one either: swarm's configs hold at most 1000 KB, too little for a static prober built with Go, a bind
// mount needs the program on every node, and the engine's API has no image mounts before 28). The check is the service
// label LabelHealth (JSON, as the workload gives it), and its port is also published in host mode at a port the engine
// picks on each task's node (PortConfig "berth-health"), so berth reaches each task, not whichever one the routing mesh
// picks, without IPVS. Apply probes every running task of the applied spec at its node's address (Status.Addr) each
// interval and counts a task ready once a probe passed; a task failing Retries probes in a row fails Apply, and a
// rollout is then rolled back to the service's previous spec (ServiceUpdate with rollback "previous", as `docker
// service rollback`). List probes each running task once, with the check of the spec it runs (the service's
// previous spec's for a task of that hash, during a rollout or a rollback; else the service's): Replica.Health
// "healthy" or "unhealthy" ("starting" within the start period); a task of a spec without such a check is not probed.
//
// Canaries: swarm itself does not see berth's check, and its start-first update stops an old task once the new task's
// container runs, not once berth's probe passes; a version whose check fails would replace the old one. So a rollout
// (a new spec hash) of a running service with an HTTP or TCP check and replicas first runs the new spec as a canary:
// a one-task service CanaryName ("<service>-canary"), labelled LabelCanary with the ownership labels and the hash,
// the same task template (image, env, secrets, limits), on the same networks without the workload's alias (the
// workload's name never resolves to it), none of the public ports, only the checked port in host mode for berth's
// probe. Once its task passes the check the canary is removed and the service updated (start-first, as above); when
// its task fails the check (Retries probes in a row), keeps failing (FailedTasks), or is not healthy when Apply's
// context ends, the canary is removed, the service is not touched (its tasks keep running and serving), and Apply
// fails with a *CanaryError naming the check, the address probed and the answer. A canary left behind (berth stopped
// mid-Apply) is removed by the next Apply or Delete of the workload, and List, the background sync and Environments
// never count one. A create needs no canary (there is no old version to keep), nor do a scaling, a repair of a
// field changed by hand (the hash was proved), or a command check: the engine runs it, and swarm counts a task
// running, and stops an old one, only once the engine's HEALTHCHECK says healthy (a task that turns unhealthy
// fails, and swarm rolls the update back). The canary costs a rollout the time its task takes to start and pass
// one probe. The window between a new task's start and its first answer is still not covered (an app that starts
// listening late is briefly not served); berth must reach every node's address.
//
// Read-back: List reads each workload from its service's own spec (ServiceInspect/ServiceList), never from a copy berth
// stored: TaskTemplate.ContainerSpec Image, Command, Args, Env and Healthcheck (else LabelHealth),
// TaskTemplate.Resources.Limits (NanoCPUs, MemoryBytes), EndpointSpec.Ports (an ingress port is public at its
// PublishedPort; a host-mode port that LabelPublicPorts names is public at the host port named there, one switched to
// host mode by hand reads as internal; berth's "berth-health" port is left out) and Mode.Replicated.Replicas.
// Image: the engine's client respells a reference in its familiar form with a tag ("docker.io/library/app" reads
// "app:latest") and QueryRegistry pins a tag to its digest; the service label LabelImage holds the reference as
// berth wrote it, and the live image reads back as that when it names the same image, or that tag pinned where
// berth gave none (imageOf); any other image (changed by hand, another digest) reads back as the service has it,
// and shows as drift. A reference berth pinned reads back whole, digest included. Normalize leaves internal ports out of the desired side (the service spec holds none:
// they are reached over the network at any port). The environment network is berth's one side object: a service
// not attached to it (detached by hand, or the network removed) has "network berth-<instance>-<env>-overlay" in
// Observed.Missing, one NetworkList per List pass. Apply compares the live fields and the attachment with the
// desired ones whatever the hash label says, and updates the whole service spec when they differ (a start-first
// rolling update; service labels of someone else's are carried over), then waits until every task runs the
// current template, not only the current hash label.
//
// Names: a service or network name over swarm's 63 characters (a long workload in preview "pr-2147483647") keeps
// its first 50 characters and ends with a hash of the instance, environment and workload; shorter names are as
// they always were.
//
// Previews: a preview environment ("pr-42") has its own services, network and secret objects, found and deleted
// by its own environment label, so its List and Delete never see its base's, nor the base's its; ingress published
// ports are cluster-wide, and the preview controller gives a preview published ports of its own. The service, its
// containers, the network and the secret objects also carry providers.LabelPreview (the number); the service and
// its containers providers.LabelHead (the head commit it was created or rolled from, when it is a commit ID).
// Environments (providers.EnvironmentLister) is one ServiceList of the instance's and target's labels: each
// environment once, its number when LabelPreview names that very environment, and the head of its most recently
// updated service. Observed.Endpoints are the service's Endpoint.Ports published in ingress mode (a port swarm
// has not allocated yet is left out), at the node address: the manager's host for a tcp:// engine address,
// 127.0.0.1 for a local socket (the routing mesh answers on every node); in host mode, each port of
// LabelPublicPorts at PublicAddress (a wildcard reads 127.0.0.1) and its HostPort, once a task runs.
//
// Watch: a host-mode endpoint has one (providers.WatchTasks), by which berth's edge follows the tasks itself, with
// no berth controller running: Engine is the manager's host setting ("" for the environment's default; the
// client's address for NewWithClient), Labels the four ownership labels of the workload's service (instance,
// environment, target, workload), Port the container port, which each running task publishes in host mode at a
// port the engine picks on its node (Status.PortStatus, at the node's Status.Addr; berth uses the manager's host
// where that is a wildcard, or a loopback address while the manager is remote), and HealthPath the path of the
// workload's HTTP check when it checks that port, else "". An ingress endpoint has none: the routing mesh serves
// it outside berth's process. Equal watches are one pointer, so an unchanged Endpoint compares equal (==) from one
// List to the next; callers must not modify one. A rollout's canary carries the same four labels (and LabelCanary)
// and publishes its checked port in host mode, so when the check is on the public port an edge must skip services
// labelled LabelCanary, as List does. A Docker target on the same engine may run the same workload at once (a
// migration): the two targets' proxies can serve one host port only at two distinct publicAddress values, neither
// a wildcard; an Apply whose address is taken fails before anything changes, naming the address and the setting.
//
// Secrets (Capabilities.SecretKinds ["sops"], SecretFiles true): swarm resolves no store reference, so only values
// berth decrypted are delivered. A file secret is a swarm secret object per value, named
// berth-<instance>-<env>-<workload>-<secret>-<fingerprint> (SecretObjectName; cut to swarm's 64 characters with a
// hash), labelled with the ownership labels, LabelSecret and LabelSecretFingerprint, its data the value; the task
// template references it at the file's path, mode 0400, owned by the image's user when the manager has the image
// and its USER is numeric or root (root otherwise; a user by name is refused). Swarm keeps the data in its raft
// store, encrypted at rest, never returns it through the API, and mounts it on a tmpfs in the tasks' containers.
// Swarm secrets are files only, so an env secret is a value of ContainerSpec.Env: `docker service inspect` and
// `docker inspect` of a task's container show it (to anyone with access to a manager's or the node's engine API);
// nothing better exists for an image without a shell. The service label LabelSecrets holds names and fingerprints
// only; List reads Spec.SecretEnv (the variables it names are left out of Spec.Env), Spec.Files (the file
// references it names) and Observed.SecretFingerprints from it: a variable or reference removed by hand reads as
// gone (drift); a value changed by hand is not seen. A rotation is a new spec hash: Apply creates the
// new value's object first, updates the service (start-first, rollback on failure) and, once every task runs the
// new spec, removes the workload's objects the spec no longer references (one the engine still refuses to remove
// is retried by the next Apply or Delete). Delete removes the workload's objects after its service.
//
// Offline (providers.RegisterOffline): the settings are parsed; the Capabilities are the Provider's (they depend on
// settings.publish only, in Capabilities.How's words), and so is Validate with settings.publish: without it, a
// Provider detects the mode when built, and a public UDP port in host mode is found at plan time only.
//
// Non-goals: configs, store references for secrets, placement constraints, global services, docker's config.json
// and credential helpers, node management.
//
// Caller's duties: one call per workload at a time (the reconciler's rule); the engine addressed is a swarm manager;
// the image is reachable by every node that may run a task; berth reaches every node's address (probes, host-mode
// backends); Close the provider when done (it stops the proxies and the sync; services keep running).
//
// Main loop of Apply, in a sketch:
//
//	net := the owned overlay network of the environment, or NetworkCreate
//	for each file secret: the secret object of its value, or SecretCreate
//	ServiceRemove the workload's leftover canaries
//	svc := ServiceInspect(name)           // someone else's service with our name is a permanent error
//	switch {                              // with ImageAuth: DistributionInspect first, then its X-Registry-Auth
//	case svc == nil:                      ServiceCreate(spec)
//	case svc hash != d.SpecHash,
//	     live fields or network differ:   (new hash, HTTP/TCP check: the canary first, see Canaries)
//	                                      ServiceUpdate(svc.Version, spec)     // a start-first rolling update
//	case svc replicas != d.Replicas:      ServiceUpdate(svc.Version, svc.Spec with the new count)
//	}                                     // a stale Version ("out of sequence") is re-read and retried
//	poll ServiceInspect + TaskList every PollInterval until no update runs and exactly Replicas tasks are meant
//	    to run, all of d.SpecHash and the current template, and running (healthy; an HTTP or TCP check probed
//	    by berth); rollback_* or paused → error; a task failing berth's probe → roll back, error
//	    (host mode: claim the proxies first; each poll routes them to the ready tasks)
//	SecretRemove the workload's secret objects the spec no longer references
//
// Swarm itself replaces tasks that die or whose container is removed (drift), so a repeated Apply only waits. Every
// engine call goes through one retry layer: 5xx, unavailable, conflicts and timeouts are retried with capped
// exponential backoff and jitter; invalid requests come back as providers.Permanent.
package swarm
