// Package aws is berth's provider for Amazon ECS on Fargate (target type "aws"): each workload is one ECS service
// in the target's cluster, running tasks of a task definition family, both named berth-<instance>-<env>-<workload>.
//
// Mapping: one task definition revision per spec hash (FARGATE, awsvpc, task CPU/memory from the Fargate table,
// one container "app": image, entryPoint = command, command = args, environment, port mappings, a command health
// check in exec form, the spec as the docker label berth.dev/spec), tagged with the providers.Label* ownership
// tags and the spec hash. The service (CreateService with a deterministic clientToken, launch type FARGATE, the
// target's subnets, security groups and public IP choice, minimumHealthyPercent 100 / maximumPercent 200, circuit
// breaker with rollback, propagateTags TASK_DEFINITION) carries the ownership tags. Updates are UpdateService with
// the new revision or count: ECS itself brings the new tasks up before it stops the old ones, and replaces stopped
// tasks (drift). List reads ListServices (no tag filter exists), DescribeServices with tags in batches of 10,
// ListTasks and DescribeTasks.
//
// Non-goals: load balancers, service discovery, autoscaling, secrets from Secrets Manager, EC2 capacity, clusters
// or networks (the target names existing ones). HTTP and TCP health checks and stable public addresses need a load
// balancer: Validate reports them and Apply runs the workload without them.
//
// Caller's duties: one call per workload at a time (the reconciler's rule); credentials from the AWS default chain;
// the cluster, subnets, security groups and roles exist.
//
// Main loop of Apply, in a sketch:
//
//	svc := DescribeServices(name)              // ours, or nil; someone else's is a permanent error
//	td  := latest revision with our hash, or RegisterTaskDefinition
//	if svc == nil { CreateService(clientToken) } else if td or count differ { UpdateService }
//	poll DescribeServices + ListTasks/DescribeTasks every PollInterval until
//	    one deployment, on td, COMPLETED, Replicas running and ready (FAILED → providers.Permanent)
//	DeregisterTaskDefinition(the revision replaced)
//
// Every call goes through one retry layer (the SDK's own retryer is off): throttling, 5xx, timeouts, conflicts
// and quota are retried with capped exponential backoff and jitter; invalid requests come back as
// providers.Permanent.
package aws
