// Package marathon is berth's provider for DC/OS Marathon (target type "marathon"): each workload is one Marathon
// app with the deterministic id <group>/<instance>/<environment>/<workload> (group "/berth" by default), spoken to
// with a thin net/http + JSON client of the few v2 endpoints it needs (no SDK).
//
// Mapping: instances = replicas, cpus = CPU millis / 1000, mem = MiB, env, labels (the providers.Label* ownership
// labels and the spec hash; for a preview environment also berth.dev/preview, its number, and berth.dev/head, the
// head the app was created or last rolled from: a new head alone is no reason for a PUT), a DOCKER container on BRIDGE networking with port mappings (containerPort; hostPort =
// the stable HostPort of a public port, 0 = dynamic for an internal one), args, and a command as docker's
// entrypoint parameter plus args (exec form, no shell); health checks HTTP → HTTP (portIndex, path), TCP → TCP
// (both run by Marathon), command → COMMAND (through /bin/sh -c); upgradeStrategy {minimumHealthCapacity 1,
// maximumOverCapacity 1}: Marathon starts the new tasks beside the old ones and kills the old ones only as the new
// ones turn healthy (make before break).
//
// Secrets (SecretKinds sops only; no SecretFiles): Marathon's own secrets (an app's `secrets` with env
// {"secret": ...} references and secret volumes) need the secret store of DC/OS Enterprise, which open-source
// Marathon lacks, so berth sets a SOPS secret's value as a plain env value of the app. Marathon keeps it in the app
// definition (and its versions, in ZooKeeper) and shows it to anyone who may read the app: GET /v2/apps, the UI,
// `dcos marathon app show`. Labels carry names and fingerprints only: berth.dev/secret-env ("VARIABLE=secret"
// pairs) and berth.dev/secrets ("secret=fingerprint" pairs); the read-back moves the variables the label names
// from Spec.Env to Spec.SecretEnv (never showing the value) and reads the fingerprints into
// Observed.SecretFingerprints. Apply compares the live value with the desired one in memory, so a value changed
// by hand is put back at the next apply (the plan cannot show it: it sees fingerprints, not values). A rotated
// value is a new spec hash and a new definition: Marathon's rolling restart (make before break, as for any
// change). Marathon's error answers pass through package redact before they become errors.
//
// Read-back: List and Apply read every managed field from the live app (live), never from a copy berth stored:
// container.docker.image, the entrypoint parameter (a `cmd` set by hand reads as ["/bin/sh", "-c", cmd]), args,
// env (a DC/OS secret reference someone else set reads as "(secret <name>)"), the port mappings (container.docker.portMappings, or
// container.portMappings as Marathon 1.5 and later answer them; a non-zero hostPort makes a port public), cpus,
// mem, the first health check (protocol, path, the port its portIndex points at, intervalSeconds, timeoutSeconds,
// maxConsecutiveFailures, gracePeriodSeconds) and instances. The read-back is lossy, so the provider is a
// providers.Normalizer: a command splits into the entrypoint and args, cpus 1 and mem 128 when unset, health
// durations in whole seconds (at least 1 for interval and timeout), a command check as the shell line. Apply
// replaces the app (PUT, partialUpdate=false) when a managed field or berth's labels differ, carrying over the
// labels of others, docker parameters other than the entrypoint and the top-level fields berth never sets
// (backoffSeconds, constraints, ...); the rest of what berth sets (container, healthChecks) is berth's. A Marathon app has no side objects, so nothing is ever
// reported Missing.
//
// Non-goals: pods, groups beyond the id prefix, constraints, service ports and Marathon-LB, the DC/OS Enterprise
// secret store, persistent volumes, USER networks, the Mesos containerizer.
//
// Caller's duties: one call per workload at a time (the reconciler's rule); a reachable Marathon (directly or
// through DC/OS admin router) and, for DC/OS strict mode, a service-account token in the variable named by
// tokenEnv (sent as "Authorization: token=..."; it is read at every call, so a rotated token is picked up).
//
// Main loop of Apply, in a sketch:
//
//	app := GET /v2/apps/{id}?embed=apps.tasks       // ours, or nil; someone else's → permanent ErrNotOwned
//	if app == nil || berth's labels differ || live(app) differs from the desired workload as read back {
//	    PUT /v2/apps/{id}?partialUpdate=false[&force=true]   // unmanaged fields and labels of others carried over
//	    409 "App is locked by one or more deployments":
//	        the app's spec hash label is not d's (a rollout berth superseded, maybe one that never finishes)
//	            → read the app again, PUT with force=true (Marathon cancels that deployment, deploys d)
//	        else (someone's edit or scale of the spec berth wants) → poll GET /v2/deployments until they are
//	            gone, repeat (with the force setting every PUT carries force=true)
//	}
//	poll GET /v2/apps/{id}?embed=apps.tasks every PollInterval until no deployment and `instances` tasks run
//	    the current configuration version, healthy (or running without checks); ApplyTimeout bounds the wait
//
// Delete checks ownership, DELETE /v2/apps/{id} (a 409 is overridden with force=true: whatever the deployment rolls
// to is about to be stopped) and waits for the stop deployment. List is
// GET /v2/apps?label=berth.dev\/instance==<instance>&embed=apps.tasks, then a filter on environment, target and
// the expected id. Replicas are the app's tasks; a task of the current configuration (its version, the app
// version it was launched at, is versionInfo.lastConfigChangeAt or a later scale of it) carries the app's spec
// hash, a task of an earlier version (mid-rollout the old tasks still serve) the spec hash label of that version,
// read with GET /v2/apps/{id}/versions/{version} and cached per provider (versions are immutable; "" for one
// Marathon no longer keeps). Endpoints: one per public port (a mapping with a host port), the host of a running task and
// its port at the mapping's index in the task's ports (a wildcard host reads as 127.0.0.1). Environments
// (providers.EnvironmentLister) is one GET /v2/apps?label=berth.dev\/instance==<instance>,berth.dev\/target==<target>
// without tasks, each environment once with its preview number and newest head. Every call goes through one retry layer: 5xx, 429, timeouts and dropped connections are retried
// with capped exponential backoff and jitter; 400, 401, 403 and 422 (with Marathon's validation details) come back
// as providers.Permanent; a 401 or 403 with Marathon's words and what to fix (the DC/OS token in settings.tokenEnv,
// or the account's permissions).
package marathon
