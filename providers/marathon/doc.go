// Package marathon is berth's provider for DC/OS Marathon (target type "marathon"): each workload is one Marathon
// app with the deterministic id <group>/<instance>/<environment>/<workload> (group "/berth" by default), spoken to
// with a thin net/http + JSON client of the few v2 endpoints it needs (no SDK).
//
// Mapping: instances = replicas, cpus = CPU millis / 1000, mem = MiB, env, labels (the providers.Label* ownership
// labels, the spec hash and the workload as JSON in berth.dev/spec), a DOCKER container on BRIDGE networking with
// port mappings (containerPort; hostPort = the stable HostPort of a public port, 0 = dynamic for an internal one),
// args, and a command as docker's entrypoint parameter plus args (exec form, no shell); health checks HTTP →
// MARATHON_HTTP (portIndex, path), TCP → MARATHON_TCP, command → COMMAND (through /bin/sh -c); upgradeStrategy
// {minimumHealthCapacity 1, maximumOverCapacity 1}: Marathon starts the new tasks beside the old ones and kills
// the old ones only as the new ones turn healthy (make before break).
//
// Non-goals: pods, groups beyond the id prefix, constraints, service ports and Marathon-LB, secrets, persistent
// volumes, USER networks, the Mesos containerizer.
//
// Caller's duties: one call per workload at a time (the reconciler's rule); a reachable Marathon (directly or
// through DC/OS admin router) and, for DC/OS strict mode, a service-account token in the variable named by
// tokenEnv (sent as "Authorization: token=..."; it is read at every call, so a rotated token is picked up).
//
// Main loop of Apply, in a sketch:
//
//	app := GET /v2/apps/{id}?embed=apps.tasks       // ours, or nil; someone else's → permanent ErrNotOwned
//	if app == nil || labels, instances, image or env differ {
//	    PUT /v2/apps/{id}?partialUpdate=false[&force=true]
//	    409 "App is locked by one or more deployments" → poll GET /v2/deployments until those are gone, repeat
//	}
//	poll GET /v2/apps/{id}?embed=apps.tasks every PollInterval until no deployment and `instances` tasks run
//	    the current configuration version, healthy (or running without checks); ApplyTimeout bounds the wait
//
// Delete checks ownership, DELETE /v2/apps/{id} (same 409 handling) and waits for the stop deployment. List is
// GET /v2/apps?label=berth.dev\/instance==<instance>&embed=apps.tasks, then a filter on environment, target and
// the expected id. Every call goes through one retry layer: 5xx, 429, timeouts and dropped connections are retried
// with capped exponential backoff and jitter; 400, 401, 403 and 422 (with Marathon's validation details) come back
// as providers.Permanent.
package marathon
