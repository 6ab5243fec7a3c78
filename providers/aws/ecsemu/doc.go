// Package ecsemu is a wire-level emulator of the subset of the Amazon ECS API that berth's AWS provider uses. It is
// an httptest server speaking the AWS JSON 1.1 protocol (POST /, X-Amz-Target:
// AmazonEC2ContainerServiceV20141113.<Op>, application/x-amz-json-1.1), so the real aws-sdk-go-v2 ECS client talks
// to it unchanged; only the endpoint and the (static) credentials differ.
//
// Operations implemented: RegisterTaskDefinition, DescribeTaskDefinition, DeregisterTaskDefinition,
// ListTaskDefinitions, CreateService, UpdateService, DescribeServices, ListServices, DeleteService, ListTasks,
// DescribeTasks, StopTask, TagResource, ListTagsForResource.
//
// Behaviour that matters to a provider:
//   - Time is a step counter: every request advances the simulation one step (or only Step does, with
//     Options.Manual). Tasks go PROVISIONING → PENDING → RUNNING over steps, then health HEALTHY when the task
//     definition has a health check; deployments go IN_PROGRESS → COMPLETED once the primary deployment runs its
//     desired count, and only then are the older deployments' tasks stopped (minimumHealthyPercent 100).
//   - The service scheduler replaces stopped tasks (drift is healed by ECS itself). A draining (deleted) service
//     stops its tasks and becomes INACTIVE.
//   - Eventual consistency: a new service is left out of the first ListServices that could have shown it.
//   - CreateService honours clientToken: the same token and request return the same service; the same token with
//     another request, or a second create of an active name, is "Creation of service was not idempotent."
//   - Validation as ECS does it: the Fargate CPU/memory table, awsvpc for Fargate, required fields, unknown
//     clusters, services and task definitions, page and batch sizes.
//   - Deployment circuit breaker: tasks that cannot pull their image (MissingImage) stop with
//     CannotPullContainerError; after the threshold the deployment is FAILED (and rolled back when enabled and
//     a previous deployment exists).
//   - Faults: Fail(n, kind) and FailOp(op, n, kind) with kinds throttle (400 ThrottlingException), server (500
//     ServerException), unavailable (503), conflict (400 UpdateInProgressException), reset (connection closed with
//     no answer) and slow (the next n tasks take SlowSteps more steps to start).
//   - Out-of-band hooks: KillTask (a task dies), CreateLookAlike (an unowned service), ServiceRunning, Requests.
//
// Simplified: one account and region; no container instances, capacity providers, load balancers, service
// discovery, task sets or EC2 launch type; tasks have no network interfaces; stopped tasks and INACTIVE services
// stay visible until Close; tags are not validated beyond their count; SigV4 signatures are required but not
// verified.
package ecsemu
