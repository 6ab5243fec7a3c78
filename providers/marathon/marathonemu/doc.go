// Package marathonemu is a wire-level emulator of the subset of the Marathon REST API (v2) that berth's Marathon
// provider uses: an httptest server speaking Marathon's JSON, so a client under test talks to it as to Marathon
// behind DC/OS admin router.
//
// Endpoints: PUT /v2/apps/{id} (create or replace, with ?force and ?partialUpdate), GET /v2/apps/{id}
// (?embed=apps.tasks|app.tasks), GET /v2/apps (?label=<selector>, ?embed=apps.tasks), DELETE /v2/apps/{id}
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
//   - A deleted app disappears at once; its tasks are killed by a stop deployment that stays listed until they
//     are gone.
//   - Marathon relaunches tasks that die (KillTask), without a deployment; KillTask with scale lowers instances.
//   - Validation as Marathon does it: 422 {"message": "Object is not valid", "details": [{"path", "errors"}]} for
//     app ids, instances, resources, the Docker container, port mappings, health checks, cmd with args; 400 for a
//     bad label selector (the term grammar [-A-Za-z0-9_.] with backslash escapes).
//   - Authentication: with Options.Token, every request needs "Authorization: token=<Token>" (401 otherwise).
//   - Faults: Fail(n, kind) with kinds server (500), unavailable (503), reset (connection closed without an
//     answer) and slow (the next n tasks take SlowSteps more steps to start).
//   - Out-of-band hooks: KillTask, CreateLookAlike (an app without labels), AppExists, Tasks, Requests.
//
// Simplified: one agent ("agent-1") with unlimited resources and no port conflicts; no groups API, pods,
// constraints, readiness checks, secrets, launch queue delays or task lost states; versions are synthetic
// timestamps from a counter.
package marathonemu
