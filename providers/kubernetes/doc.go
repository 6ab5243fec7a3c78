// Package kubernetes is berth's provider for Kubernetes clusters (target type "kubernetes"): each workload is a
// Deployment and, when it has ports, a ClusterIP Service (every port) and a LoadBalancer Service <name>-public (the
// public ports at their host ports), all written with server-side apply (apply configurations, field manager
// "berth", force) in the namespace berth-<environment> (created when missing, labelled, and deleted with the
// environment's last workload: see Namespaces) or the one the target names (then objects are named
// <environment>-<workload>, shortened with a hash past 56 characters).
//
// Previews (Owner.Preview = N, environment pr-<N>) live in a namespace of their own, PreviewNamespace(<the
// target's namespace, else "berth">, N) = "<base>-pr-<N>" (cut to 63 characters with a hash when longer), whose
// objects are named after the workload alone. Apply creates it when missing, labelled berth.dev/instance,
// berth.dev/environment and berth.dev/preview, reads it on every call (never cached), and never adopts one of that
// name without those labels (ErrNotOwned, naming it); one being deleted is waited out, then created again. List of a
// preview whose namespace is gone or being deleted is empty. DeleteEnvironment (providers.EnvironmentDeleter)
// deletes the namespace when its labels say it is owner's (UID precondition); the cluster's namespace controller
// removes what is left in it. Every object of a preview carries berth.dev/preview=<N>; the Deployment, Services,
// Ingress and berth's Secret's labels carry berth.dev/head as well, the pod template does not (a new head with an
// unchanged workload rolls no pod). A preview workload whose public ports have hosts (Desired.Preview.Hosts,
// Capabilities.HostRoutes) gets an Ingress (networking.k8s.io/v1) of its name: one rule per host, path "/"
// (Prefix), to the ClusterIP Service at the container port, ingressClassName from the target setting ingressClass
// (the cluster's default class without it); the Deployment's annotation berth.dev/ingress names it, so that one
// gone is Observed.Missing ("Ingress web"), and Apply re-applies it when missing or when berth's fields differ.
// Observed.Endpoints (what `berth status` shows): per public port, Address from the LoadBalancer Service's status
// (its first status.loadBalancer.ingress IP or hostname, at the Service's port = the host port; left out until
// the cluster's load balancer implementation, a cloud controller or MetalLB, has set one) and, for a preview, URL
// http://<host>/ from the live Ingress rule routing the port; a port with neither is left out. The target's
// ingressClass is for previews' hosts only: an environment's public ports are served by their LoadBalancer
// Service and have no Ingress, so their Endpoint is the load balancer's address alone. Environments (providers.EnvironmentLister)
// costs two calls by label selector on berth.dev/instance: the namespaces (this target's preview namespaces, even
// empty ones; those being deleted, and every Deployment in them, are gone) and the Deployments of every namespace
// (on the target), each environment once with its preview number and the head of the Deployment applied last.
//
// Namespaces: berth-<env> and a preview's namespace are created by Apply when missing, labelled
// app.kubernetes.io/managed-by=berth, berth.dev/instance and berth.dev/environment (and berth.dev/preview); an
// existing one without those labels is used as it is (a preview's is refused) and never labelled. A preview's
// goes with the preview (DeleteEnvironment). Delete of a workload deletes berth-<env> (UID and resourceVersion
// preconditions) only when its labels say berth created it for this instance and environment and it holds
// nothing else: no Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod (but the going pods of owner's deleted
// workloads), Service, ConfigMap (but kube-root-ca.crt), Secret (but the default ServiceAccount's token),
// ServiceAccount (but default), PersistentVolumeClaim, Role or RoleBinding, berth's of other workloads, targets
// and instances included (Ingresses are not looked at). A namespace the target names is never created or
// deleted; neither is a berth-<env> of an older berth (no instance label). Race safety: after creating a Deployment in a berth-<env> berth created, Apply writes
// the namespace's annotation berth.dev/created, changing its resourceVersion, so that a Delete that found it empty
// before is refused by the precondition; an Apply whose namespace is deleted under it (a write refused with
// NamespaceTerminating or the namespace's NotFound, the annotation's answer showing it being deleted, the
// Deployment gone during the rollout) waits until it is gone, creates it again and starts over. A Delete whose
// look inside is denied by RBAC leaves the namespace and succeeds, with a warning.
//
// Mapping: one container "app" (image, command, args, env sorted by name, container ports, CPU and memory as equal
// requests and limits), health checks as readiness and liveness probes (HTTP → httpGet, TCP → tcpSocket, command →
// exec; interval, timeout, retries, start period as the liveness probe's initial delay), a RollingUpdate strategy
// with maxUnavailable 0 and maxSurge 1 (make-before-break), the providers.Label* ownership labels on every object
// and pod template (the selector leaves out the spec hash: it is immutable), the Services berth applies named in
// the Deployment annotation berth.dev/services, and the applied workload as JSON in berth.dev/spec (for people;
// never read back).
//
// Read-back (live, shared by List and Apply): every managed field comes from the live objects: image, command,
// args, env, CPU and memory, probes and spec.replicas from the Deployment; the ports from the container ports,
// named after the ClusterIP Service's ports, public at the port of the LoadBalancer Service's port forwarding to
// them (a Service port forwarding to no container port reads as a port of its own). Where berth writes one value
// twice (request and limit, readiness and liveness probe) and the two differ, the one berth's apply no longer
// holds (metadata.managedFields) is read: it is the one changed by hand. A Service named in berth.dev/services
// that is gone is Observed.Missing ("Service web-public"). Normalize (providers.Normalizer) gives the read-back
// form: probe durations in whole seconds, rounded up, Kubernetes' defaults for zero ones; default port names
// ("tcp-8080") dropped. Fields berth never sets (annotations and labels of others, the grace period, volumes and
// mounts other than berth's secret ones, init containers, a readiness probe's initial delay, successThreshold)
// are not read and never shown. Not seen either: a Service's selector or traffic policy changed by hand (the
// next apply of a drifted workload restores them, a plan does not show them); a public Service that is no
// LoadBalancer any more reads as ports not public.
//
// Field managers: env entries, container ports and Service ports are lists keyed by name or port; an entry whose
// key berth's apply does not hold was added by another manager. By default it is Observed.Kept (named with its
// managers, left out of the spec, left in place: "env.EXTRA", "ports[9999/tcp]", "ports[9090/tcp on Service
// web-public]"); with the target setting takeOwnership: true it reads back like any value, so the plan shows it,
// and Apply removes it. A container other than "app" is always Kept ("containers.sidecar"). Single values
// (image, command, args, CPU and memory, the probes, replicas) are berth's whoever set them last: another value is
// drift, and one that berth's apply holds no field for (a command where the workload has none, a CPU limit, a
// probe of another kind) is removed by Apply too.
//
// Secrets (Capabilities: kinds "sops" and "kubernetes", files too): a value berth decrypted (SOPS) goes into a
// Secret <name>-secrets that berth owns in the workload's namespace (type Opaque, one data key per secret name,
// the ownership labels without the spec hash, server-side applied by "berth" before the Deployment, so before
// any pod of the new template starts); a secret of kind kubernetes is an existing Secret of that namespace,
// referenced by name and key, which berth never writes, deletes or reads the data of (it reads its metadata
// only). An env var from a secret is valueFrom.secretKeyRef; a file is a secret volume "secret-<secret>" with
// the one item <secret> (mode 0400: a container running as another user than root needs a pod fsGroup, which
// berth does not set) mounted read-only with subPath at the file's path, so a file never hides the other files
// of its directory and two files may share one; subPath files do not follow later changes of the Secret, which
// is fine: a rotation rolls the pods. The pod template's annotation berth.dev/secrets holds, per secret name,
// its fingerprint and the Secret and key referenced, plus an existing Secret's resourceVersion at the apply;
// never a value. A rotated SOPS value is a new fingerprint, so a new template, so a make-before-break rollout.
// An existing Secret's data is not berth's to fingerprint: its resourceVersion stands in for it, so that a
// change of it (data or metadata) is seen by List (the fingerprint reads back as "<fingerprint>@<version>", or
// "@gone") and rolls the pods on the next apply, which Kubernetes itself would not do. Read-back: env
// secretKeyRefs and the mounts of berth's secret volumes give Spec.SecretEnv and Spec.Files as secret names (a
// key of berth's Secret is the name; an existing Secret is the name whose annotation entry names it; a reference
// changed by hand reads as "Secret X key K"), the annotation gives Observed.SecretFingerprints, and berth's
// Secret gone is Observed.Missing ("Secret web-secrets"). Env entries from a secret are berth's like plain ones
// for the managed-fields rules below. berth's Secret is deleted after the rollout that stops using it and by
// Delete (after the Deployment); a Secret of that name without berth's labels is ErrNotOwned, and a missing
// existing Secret fails Apply before anything is written. The data of berth's Secret is in etcd (encrypted at
// rest only if the cluster's EncryptionConfiguration says so) and readable by whoever may get Secrets in the
// namespace, and by its pods.
//
// Non-goals: an Ingress for workloads other than previews' (and TLS on it), HPA, PodDisruptionBudgets, secrets
// of cloud stores (a Kubernetes cluster reaches them through the External Secrets Operator or the Secrets Store
// CSI driver, whose Secrets berth references by name), deleting a namespace berth did not create or one holding
// anything else, running without a deployment controller (tests simulate one: package kubetest).
//
// Caller's duties: one call per workload at a time (the reconciler's rule); credentials allowed by the RBAC Role in
// docs/providers.md (Kubernetes provider, Permissions): get, create, patch and delete on namespaces (berth's own),
// list on the kinds collectNamespace looks at, and for previews list on namespaces and get, list, create, patch
// and delete on ingresses (networking.k8s.io); a LoadBalancer
// implementation in the cluster for public ports to get an address, an Ingress controller (and DNS for the preview
// hosts) for preview hosts to be served.
//
// Main loop of Apply, in a sketch:
//
//	ensure namespace berth-<env> (get, create when missing; once per provider) or a preview's (every call;
//	    ErrNotOwned when not labelled as owner's); one being deleted: wait until it is gone, create it
//	get the metadata of each existing Secret referenced (missing → error, nothing written)
//	get Deployment, both Services and the metadata of Secret <name>-secrets: someone else's object of our name
//	    → permanent ErrNotOwned
//	apply Secret <name>-secrets when the workload has SOPS values
//	strip: JSON patch guarded by the resourceVersion (a test op) removing what a forced apply cannot (see above);
//	    refused because the object moved → read it again and recompute
//	if live(objects) != Normalize(desired) or ExtractDeployment(cur, "berth") != desired { apply Deployment;
//	    created in a namespace berth created → annotate the namespace (berth.dev/created) }
//	apply Services missing, differing or drifted (with takeOwnership, their foreign ports removed first); delete
//	    an owned one no longer wanted; the same for a preview's Ingress
//	poll the Deployment every PollInterval until RolloutState: observedGeneration ≥ generation, updated = ready =
//	    available = replicas, no old replica, Available true; Progressing/ProgressDeadlineExceeded → permanent
//	delete an owned Secret <name>-secrets no longer wanted
//
// List reads owner's Deployments, pods and Services (three calls per namespace, label selector on instance and
// environment, filtered on target; for a preview, a get of its namespace first and, when a Deployment names one,
// its Ingresses), and, only when a workload has secrets, the metadata of berth's Secrets (one
// call) and of each existing Secret referenced (one call each): each Deployment read back as above, each pod not
// terminating a replica (ID = UID, running = phase Running, healthy = condition Ready). Delete removes the owned
// Ingress, Services and Deployment with a UID precondition and background propagation, then berth's Secret, then
// the namespace if it is berth's and empty (see Namespaces). A namespace deleted under an Apply starts it over.
//
// Every call goes through one retry layer: conflicts, 429, 5xx, timeouts and transport failures are retried with
// capped exponential backoff and jitter (honouring Retry-After); invalid, forbidden and unauthorized requests come
// back as providers.Permanent, the last two with the API server's words and what to fix (the kubeconfig's user,
// or the RBAC rules to grant).
package kubernetes
