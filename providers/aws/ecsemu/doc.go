// Package ecsemu is a wire-level emulator of the subset of the Amazon ECS API that berth's AWS provider uses. It is
// an httptest server speaking the AWS JSON 1.1 protocol (POST /, X-Amz-Target:
// AmazonEC2ContainerServiceV20141113.<Op>, application/x-amz-json-1.1), so the real aws-sdk-go-v2 ECS client talks
// to it unchanged; only the endpoint and the (static) credentials differ.
//
// Operations implemented: RegisterTaskDefinition, DescribeTaskDefinition, DeregisterTaskDefinition,
// ListTaskDefinitions, ListTaskDefinitionFamilies, CreateService, UpdateService, DescribeServices, ListServices, DeleteService, ListTasks,
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
//   - Validation as ECS does it, the botocore ECS model (the SDK's types and their doc comments) being the
//     reference: required fields (family, containerDefinitions and each one's name and image, a health check's
//     command, taskDefinition), every enum field berth sends checked against the SDK's own lists
//     (types.X("").Values(): networkMode, requiresCompatibilities, portMappings protocol and appProtocol,
//     launchType, propagateTags, schedulingStrategy, deploymentController type, assignPublicIp, desiredStatus,
//     include, task definition and family status), the documented health check ranges (interval 5–300 s,
//     timeout 2–60 s, retries 1–10, startPeriod 0–300 s, a command starting with CMD or CMD-SHELL), one port
//     mapping per container port (TCP and UDP cannot share one), awsvpc host ports equal to the container port,
//     port mapping names (up to 64 of a-z 0-9 _ -, not starting with -, unique), the Fargate CPU/memory table,
//     awsvpc for Fargate, a FARGATE launch type only for task definitions that require FARGATE, at most 16 subnets
//     and 5 security groups, unknown clusters, services and task definitions, page and batch sizes.
//   - Answers in ECS's shapes: a registration is echoed with the awsvpc host ports, the port protocol (tcp) and the
//     health check defaults (interval 30, timeout 5, retries 3) filled in; ListTaskDefinitions takes the full
//     family name in familyPrefix (as the API reference says), ListTaskDefinitionFamilies a real prefix.
//   - Deployment circuit breaker: tasks that cannot pull their image (MissingImage) stop with
//     CannotPullContainerError; after the threshold the deployment is FAILED (and rolled back when enabled and
//     a previous deployment exists).
//   - Faults: Fail(n, kind) and FailOp(op, n, kind) with kinds throttle (400 ThrottlingException), server (500
//     ServerException), unavailable (503), conflict (400 UpdateInProgressException), limit (400
//     LimitExceededException, a quota), denied (400 AccessDeniedException naming the IAM user, the action and the
//     cluster, as ECS words it), unrecognized (400 UnrecognizedClientException, an access key IAM does not know),
//     reset (connection closed with no answer) and slow (the next n tasks take SlowSteps more steps to start).
//   - Secrets: a container's secrets[] (name and valueFrom required) are stored and echoed as sent; with
//     Options.ResolveSecret each task resolves them when it leaves PENDING, as the ECS agent does with the
//     execution role, and one that cannot be resolved stops with ResourceInitializationError (counted by the
//     circuit breaker). TaskEnvironment shows what each running task's container sees.
//   - Network interfaces: each task gets one (awsvpc) in its service's first subnet, with a private IPv4 address
//     of 10.0.0.0/16 (data only: nothing listens there); DescribeTasks shows it as ECS does, an
//     ElasticNetworkInterface attachment PRECREATED while the task is provisioned, ATTACHED with
//     networkInterfaceId, macAddress, privateDnsName and privateIPv4Address from PENDING on, DELETED once stopped.
//     A public IP (a service with assignPublicIp ENABLED gets one of 203.0.113.0/24, data only) is EC2's to tell,
//     not ECS's: the same server answers EC2's DescribeNetworkInterfaces (the Query protocol: a form-encoded POST /
//     with Action, XML answers, EC2's error shape) for the interfaces of PENDING and RUNNING tasks, selected by
//     NetworkInterfaceId.N (at most 1000; filters and paging are refused), an unknown id failing the whole call
//     with InvalidNetworkInterfaceID.NotFound; its requests are recorded as ec2:<Action> and take only faults
//     given for that op (FailOp), as RequestLimitExceeded, Unavailable, UnauthorizedOperation, AuthFailure or
//     InternalError.
//   - Tags: at most 50 per request, keys of 1–128 and values of 0–256 letters, digits, spaces and _ . : / = + - @,
//     no key twice, no aws: prefix (InvalidParameterException), at RegisterTaskDefinition, CreateService and
//     TagResource; TagResource adds or overwrites keys and keeps a resource at 50.
//   - Elastic Load Balancing v2 (the Query protocol: a form-encoded POST / with Action and Version=2015-12-01, XML
//     answers in the 2015-12-01 namespace with a RequestId, XML errors with Type, Code and Message): the same
//     server, told from EC2 by the Version. CreateLoadBalancer (network only; idempotent for the same settings,
//     DuplicateLoadBalancerName otherwise), DescribeLoadBalancers (by Names or LoadBalancerArns, PageSize and
//     Marker), DeleteLoadBalancer (its listeners go with it), CreateTargetGroup (idempotent likewise,
//     DuplicateTargetGroupName), DescribeTargetGroups (Names, TargetGroupArns or LoadBalancerArn, paged),
//     ModifyTargetGroup, DeleteTargetGroup (ResourceInUse while a listener forwards to it or an ECS service names
//     it), CreateListener (one forward action; DuplicateListener for a taken port, IncompatibleProtocols,
//     TargetGroupAssociationLimit), DescribeListeners, DeleteListener, RegisterTargets, DeregisterTargets,
//     DescribeTargetHealth, AddTags, RemoveTags, DescribeTags (at most 20 ARNs). Names: 1–32 letters, digits and
//     hyphens, no hyphen first or last, no internal- prefix; health checks: interval 5–300 s, timeout 2–120 s
//     and not longer than the interval, thresholds 2–10, a path only with HTTP(S) (ValidationError otherwise);
//     tags as ECS's, at most 50. TargetGroupNotFound, LoadBalancerNotFound, ListenerNotFound for unknown objects.
//     Requests are recorded as elbv2:<Action> and take the faults of Fail and FailOp(ELBv2Op+action): Throttling
//     (400), ServiceUnavailable (503), InternalFailure (500), AccessDenied, InvalidClientTokenId.
//   - ECS with ELBv2: CreateService and UpdateService take loadBalancers (each target group must exist, be of
//     target type ip and have a load balancer through a listener; the container and port must be in the task
//     definition) and healthCheckGracePeriodSeconds (only with load balancers), echoed by DescribeServices. A
//     RUNNING task of such a service is registered in each group at its address and container port; a task that
//     stops is deregistered and its target drains for Options.DrainSteps steps. At every step each group with a
//     listener checks its targets (SetTargetHealth decides; by default a target is healthy when a running task
//     has its address), initial → healthy after HealthyThresholdCount good checks, unhealthy after
//     UnhealthyThresholdCount bad ones; a group without a listener reports its targets unused. A task is ready
//     for its deployment only when every group finds it healthy; ECS stops a task a group finds unhealthy
//     ("Task failed ELB health checks in (target-group …)"), which counts toward the circuit breaker. EC2's
//     DescribeSubnets tells the VPC of any subnet (Options.VpcID).
//   - Out-of-band hooks: KillTask (a task dies), CreateLookAlike (an unowned service), ServiceRunning,
//     TaskEnvironment, TaskAddress, TaskPublicIP, Requests; for ELBv2 SetTargetHealth, TargetStates,
//     TargetGroupHealth, LoadBalancerDNS, LoadBalancerNames, TargetGroupNames, DeleteTargetGroupByHand,
//     DeleteListenerByHand.
//
// Where the model is silent: it names the ranges and rules above only in doc comments and says neither which
// exception an invalid value gets nor its text. The emulator answers ClientException for invalid task definition
// content and InvalidParameterException for invalid enum values and service parameters, the split ECS shows in
// public reports; the texts are ECS's where a report quotes one ("Container port N is used in more than one port
// mapping for container X" — reported as InvalidParameterException, on the service's creation; the emulator
// refuses it already at RegisterTaskDefinition; "Container health check's interval value of container X is
// invalid."; "When networkMode=awsvpc, the host ports and container ports in port mappings must match.";
// "Invalid 'containerPort' setting for container 'X'."; "Task definition does not support launch_type
// FARGATE.") and the emulator's own wording otherwise (enum values, port names, list sizes). Whether ECS also
// requires a health check's timeout to be shorter than its interval is not documented; the emulator does not.
//
// Simplified: one account and region; no container instances, capacity providers, application load balancers,
// listener rules, service discovery, task sets or EC2 launch type; a task does not wait for its targets to drain
// before it stops, and the grace period is stored, not timed (time is steps); stopped tasks and INACTIVE services stay visible until Close; SigV4 signatures are required but not
// verified.
package ecsemu
