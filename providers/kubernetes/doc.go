// Package kubernetes is berth's provider for Kubernetes clusters (target type "kubernetes"): each workload is a
// Deployment and, when it has ports, a ClusterIP Service (every port) and a LoadBalancer Service <name>-public (the
// public ports at their host ports), all written with server-side apply (apply configurations, field manager
// "berth", force) in the namespace berth-<environment> (created, labelled) or the one the target names (then
// objects are named <environment>-<workload>, shortened with a hash past 56 characters).
//
// Mapping: one container "app" (image, command, args, env sorted by name, container ports, CPU and memory as equal
// requests and limits), health checks as readiness and liveness probes (HTTP → httpGet, TCP → tcpSocket, command →
// exec; interval, timeout, retries, start period as the liveness probe's initial delay), a RollingUpdate strategy
// with maxUnavailable 0 and maxSurge 1 (make-before-break), the providers.Label* ownership labels on every object
// and pod template (the selector leaves out the spec hash: it is immutable), and the applied workload as JSON in the
// Deployment annotation berth.dev/spec, read back as Observed.Spec with image, command, args, env and replicas
// taken from the live object.
//
// Non-goals: Ingress, HPA, PodDisruptionBudgets, secrets (env values are plain), deleting namespaces, running
// without a deployment controller (tests simulate one: package kubetest).
//
// Caller's duties: one call per workload at a time (the reconciler's rule); credentials allowed by the RBAC Role in
// docs/providers-kubernetes.md; a LoadBalancer implementation in the cluster for public ports to get an address.
//
// Main loop of Apply, in a sketch:
//
//	ensure namespace berth-<env> (server-side apply, once per provider)
//	get Deployment and both Services: someone else's object of our name → permanent ErrNotOwned
//	if ExtractDeployment(cur, "berth") != desired { apply Deployment }   // drift of our fields is re-applied
//	apply or delete the Services
//	poll the Deployment every PollInterval until RolloutState: observedGeneration ≥ generation, updated = ready =
//	    available = replicas, no old replica, Available true; Progressing/ProgressDeadlineExceeded → permanent
//
// List reads owner's Deployments (label selector on instance and environment, filtered on target) and their pods:
// each pod not terminating is a replica (ID = UID, running = phase Running, healthy = condition Ready). Delete
// removes the owned Services and Deployment with a UID precondition and background propagation.
//
// Every call goes through one retry layer: conflicts, 429, 5xx, timeouts and transport failures are retried with
// capped exponential backoff and jitter (honouring Retry-After); invalid, forbidden and unauthorized requests come
// back as providers.Permanent.
package kubernetes
