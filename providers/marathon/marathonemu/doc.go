// Package marathonemu is a wire-level emulator of the subset of the Marathon REST API (v2) that berth's Marathon
// provider uses: an httptest server speaking Marathon's JSON, so a client under test talks to it as to Marathon
// behind DC/OS admin router.
//
// Endpoints: PUT /v2/apps/{id} (create or replace, with ?force and ?partialUpdate), GET /v2/apps/{id}
// (?embed=apps.tasks|app.tasks), GET /v2/apps/{id}/versions (newest first) and /v2/apps/{id}/versions/{version}
// (the definition the app had at that version, the "version" a task carries), GET /v2/apps (?label=<selector>,
// ?embed=apps.tasks), DELETE /v2/apps/{id}
// (?force), DELETE /v2/apps/{id}/tasks/{taskId} (?scale), GET /v2/deployments, DELETE /v2/deployments/{id}
// (?force).
//
// Behaviour that matters to a provider:
//   - Time is a step counter: every request advances the simulation one step (or only Step does, with
//     Options.Manual). Tasks go TASK_STAGING → TASK_RUNNING over StepsPerState steps, then pass their health
//     checks after as many more steps when the app has any.
//   - Every change of an app (PUT, DELETE) is a deployment that locks the app until it completes: a restart when
//     the configuration changed (new tasks on the new version are started, up to maximumOverCapacity extra, and
//     old ones are killed only while minimumHealthCapacity stays served), a scale when only instances changed.
//     A second change of a locked app is refused with 409 and Marathon's body ({"message": "App is locked by one
//     or more deployments. ...", "deployments": [{"id": ...}]}) unless force=true, which cancels the running
//     deployment. DELETE /v2/deployments/{id} rolls back (restores the previous definition) or, with force=true,
//     just forgets the deployment.
//   - Versions: every change of an app (a scale too) is a new app version (GET /v2/apps/{id}/versions/{version}
//     answers each definition); versionInfo.lastConfigChangeAt moves only when more than instances changed. A
//     task carries the version it was launched at (Marathon's runSpecVersion): the configuration's, or a later
//     one of the same configuration when it was launched after a scale; tasks of an earlier configuration are
//     the ones a restart replaces.
//   - A deleted app disappears at once; its tasks are killed by a stop deployment that stays listed until they
//     are gone.
//   - Marathon relaunches tasks that die (KillTask), without a deployment; KillTask with scale lowers instances.
//   - Health: a task passes its health checks once running (after StepsPerState more steps), except that
//     FailHealthPath(path) makes the app answer 404 on path, as the quickstart app does on any path but its
//     health path: a task launched with an HTTP, HTTPS, MESOS_HTTP or MESOS_HTTPS check of that path (Marathon's
//     default path is "/") runs but never passes it (healthCheckResults alive false, counted in tasksUnhealthy),
//     so a restart deployment never counts it towards minimumHealthCapacity: the old tasks keep running and the
//     deployment never completes, until a forced change or a rollback replaces it. Marathon would also kill such
//     a task after maxConsecutiveFailures and launch another; the emulator keeps it running unhealthy.
//   - Validation as Marathon's API definition (the RAML types of docs/rest-api) and validators say, answered as
//     Marathon answers: 422 {"message": "Object is not valid", "details": [{"path", "errors"}]}. Checked: the app
//     id (path segments of [a-z0-9-.]), instances >= 0 and whole, cpus >= 0.001, mem >= 0, a non-empty cmd and not
//     both cmd and args, env and label values strings, backoffSeconds >= 0, backoffFactor >= 1,
//     maxLaunchDelaySeconds >= 0, the container (type DOCKER or MESOS, a docker image, network BRIDGE, HOST or
//     USER), port mappings (containerPort, hostPort and servicePort 0..65535, protocol tcp, udp or "udp,tcp",
//     unique names), health checks (protocol in the AppHealthCheckProtocol enum HealthCheckProtocols: HTTP,
//     HTTPS, TCP, COMMAND, MESOS_TCP, MESOS_HTTP, MESOS_HTTPS; a portIndex into the port mappings unless a port is
//     given; a command for COMMAND; gracePeriodSeconds, intervalSeconds, timeoutSeconds, maxConsecutiveFailures
//     and delaySeconds >= 0) and upgradeStrategy capacities 0..1. A partial update (the default of PUT) is
//     validated as the definition it makes. 400 for a bad label selector (the term grammar [-A-Za-z0-9_.] with
//     backslash escapes).
//   - A stored definition carries Marathon's defaults, as GET answers them: instances 1, cpus 1, mem 128,
//     backoffSeconds 1, backoffFactor 1.15, maxLaunchDelaySeconds 3600, upgradeStrategy 1/1 and, per health
//     check, protocol HTTP, gracePeriodSeconds 300, intervalSeconds 60, timeoutSeconds 20,
//     maxConsecutiveFailures 3, delaySeconds 15, ipProtocol IPv4. Fields the emulator does not know are kept and
//     answered back as given.
//   - Authentication: with Options.Token, every request needs "Authorization: token=<Token>" (401 otherwise).
//   - Faults: Fail(n, kind) with kinds server (500), unavailable (503), denied (403 "Not Authorized to perform
//     this action!", as Marathon answers in DC/OS strict mode), reset (connection closed without an answer) and
//     slow (the next n tasks take SlowSteps more steps to start).
//   - Out-of-band hooks: KillTask, CreateLookAlike (an app without labels), AppExists, Tasks, TaskEnv (the
//     environment a task was launched with: what its container sees), Requests.
//   - Tasks' ports are their host ports in port-mapping order: a mapping's fixed hostPort as given, a hostPort 0
//     one from the agent's range (31000 up); their host is the agent's (Options.AgentHost, "agent-1" by default).
//
// Simplified: one agent with unlimited resources and no port conflicts; no groups API, pods,
// constraints, readiness checks, secrets, launch queue delays or task lost states; versions are synthetic
// timestamps from a counter; service ports are not assigned (a servicePort of 0 stays 0); the app JSON is the
// pre-1.5 form (port mappings under container.docker, docker.network), which Marathon 1.5 and later still accept
// but answer in the networks / container.portMappings form.
//
// Where the official definition is silent: the RAML gives minimums of 0 for the health check durations and no
// relation between timeoutSeconds and intervalSeconds, so the emulator enforces none; the texts of the "errors"
// entries are the emulator's own (Marathon's wording differs between its JSON readers and its validators: only
// the status, "message" and the "path" of each detail are relied upon); the MARATHON_HTTP, MARATHON_HTTPS and
// MARATHON_TCP names some tools show are not in the enum and are refused.
package marathonemu
