// Package azure is berth's provider for Azure Container Instances (ACI): each replica of a workload is one container
// group with one container, in the target's subscription, resource group and location.
//
// Ownership lives in Azure tags: berth.dev-instance, berth.dev-environment, berth.dev-workload, berth.dev-target,
// berth.dev-spec-hash, berth.dev-replica (providers.Label* with "/" mapped to "-", since Azure tag names cannot
// contain "/"), plus berth.dev-fields (a hash of the managed fields as written, see List). List filters the resource
// group's groups by these tags; Delete only touches groups carrying the workload's tags. Names are deterministic:
// berth-<instance>-<env>-<workload>-<i>-<hash6> (lower case, cut to 63 characters with a hash), so a repeat after a
// crash finds the group the first attempt made, and ARM's PUT-by-name makes the create idempotent. A name held by a
// group berth does not own is a permanent error.
//
// Mapping: location, osType Linux, restartPolicy Always; image; command = command + args (ACI has one command
// list, which replaces the image's entrypoint: there are no separate args), and for args without a command the
// image's entrypoint + args, as docker and Kubernetes run them: Apply reads the entrypoint from the image's
// configuration in its registry (package providers/registry: the Registry HTTP API v2, anonymous or through the
// registry's bearer-token challenge, with Provider.Registry's credentials when it has any), before anything is
// created, and tags the groups berth.dev-entrypoint = <n>-<hash> (how many leading elements of the command are
// the entrypoint, and their hash) so List reads the rest back as args; an image or tag the registry does not have,
// or refused credentials, fail the step permanently, the registry's 5xx and network errors are retried; env (names
// that look secret go as secureValue, which the API never returns); ports; CPU cores from millis and memoryInGB
// (GiB, steps of 0.1; 1 core / 1.5 GB when unset); HTTP or command health checks as readiness and liveness
// probes (whole seconds; ACI probes are exec or httpGet only, so a TCP check is a plan-time problem on health.tcp:
// it could only be an exec probe running a tool of the image, which berth cannot know the image has, and the
// problem says to write it as health.command or health.http); a Public IP address with the public ports and, with
// dnsLabelPrefix (starting with a letter), a DNS label <prefix>-<env>-<workload>-<i>-<hash6>. Each replica has its
// own address: ACI has no load balancer.
//
// Previews (Owner.Preview set): every group also carries berth.dev-preview (the pull-request number) and
// berth.dev-head (the head commit it was created from, 40 hex digits); groups of other environments are written as
// before. A DNS name label is unique per region: a preview's is <prefix>-<instance>-<env>-<workload>-<i>-<hash6>
// (its own environment name where the base's has the base's, so the two never collide even with the same spec hash;
// and the instance, as every repository's berth on a shared target has its pull request 42); names past 63 characters
// (a 40-character workload in pr-2147483647, a 40-character prefix) are cut with a hash of the whole. Tags stay
// within Azure's limits: 50 per group (berth's own take 10 with a preview's two and the entrypoint's, counted for
// every workload by Validate), names of at most 512 characters, values of at most 256.
//
// Endpoints (Observed.Endpoints): one per public port, from the first running group (of the observed spec first,
// in index order) whose Public IP address lists the port: its FQDN when it has a DNS name label, else its IP, with
// the port (ACI exposes the container port itself). A port is left out until such a group has an address.
//
// Environments (providers.EnvironmentLister): one list of the resource group's container groups, filtered by the
// instance and target tags: each environment once, its preview number from berth.dev-preview (0 when absent or not
// a positive number), Head the greatest berth.dev-head among its groups.
//
// List, in a sketch: list the resource group (one call per page; ARM list results carry no instance view, so the
// list only finds the owned groups), then Get each owned group, at most ListConcurrency at once (one call per
// replica), and read from each group's own fields: containers[0] image, command, plain environment values, ports
// (public when the Public IP address lists them), resource requests, both probes; the number of groups of the
// majority spec hash is the replica count. The workload's observed spec is the first replica whose live fields
// (with either probe) differ from its berth.dev-fields hash, so a hand edit of any one replica shows; the first
// replica when none was edited. A DNS name label that is not the one berth gives (removed or changed by hand) is
// reported in Observed.Missing as "DNS name label <label>". Normalize gives the read-back form of a desired
// workload: command and args as one list, secure values empty, default requests, memory rounded up to 0.1 GB,
// probe durations in whole seconds (at least 1), at least one retry, port names dropped.
//
// What List cannot see: the values of secure environment variables and secret volumes (a hand edit of one is
// invisible; a change of one in the configuration changes the spec hash and replaces the groups), and fields berth
// never sets (other volumes, limits, identities, tags of other tools), which it leaves alone.
//
// Non-goals: TCP probes, internal ports (no virtual network), volumes other than secret ones, registry
// credentials for ACI's own pull (imageRegistryCredentials), GPUs, Windows.
//
// Caller's duties: never run two Apply or Delete calls for the same workload at once. Validate at plan time.
//
// Apply, in a sketch:
//
//	list the workload's groups by tags
//	for i < replicas (one group at a time):
//		get the group berth-...-<i>-<hash>: not ours → permanent error; an operation in flight → wait for it
//		broken (provisioning state Failed, Canceled, Unhealthy, NotAccessible or NotSpecified; instance Stopped
//		or Failed; a container Terminated) → delete it and create it again
//		live fields differ from the desired ones (whatever the hash tag says): CPU, memory, OS type, restart
//		policy or IP address type → delete and create again (ACI refuses them in an update); anything else →
//		BeginCreateOrUpdate over it (tags of other tools kept)
//		missing → BeginCreateOrUpdate, poll the operation (Retry-After honoured), then poll Get until it runs
//		delete the other groups of index i (the old spec): make before break
//	delete the groups not in the desired set (surplus indices, copies), highest index first
//
// A replica repaired in place or recreated under its name is down while it restarts; the others serve meanwhile
// (one replica at a time). Its name and DNS label carry its index and spec hash, and a DNS label is unique in a
// region, so a same-spec replacement cannot be made beside the old group.
//
// Errors: the SDK's retry policy retries 408/429/5xx with Retry-After; what escapes it (conflicts, failed
// operations, exhausted throttling) is retried by the provider with capped exponential backoff within
// RetryBudget; validation errors (InaccessibleImage, ResourceRequestsNotSupported, other 4xx) are
// providers.Permanent.
//
// Credentials: settings.credential picks the source (default: azidentity's DefaultAzureCredential chain of
// environment, workload identity, managed identity, Azure CLI, Azure Developer CLI, Azure PowerShell). A credential
// that gets no token stops the call before anything is sent to Resource Manager: no source available, and a secret,
// certificate or federated token Entra ID refuses (AuthenticationFailedError), are permanent after one attempt, the
// error quoting the chain's own report (bounded, on one line, redacted), the sources as they stand in the
// environment and how to provide one; only Entra ID or the managed identity endpoint answering with throttling or
// a 5xx, or a token request timing out, is retried. Resource Manager's 403 AuthorizationFailed and 401
// InvalidAuthenticationToken are permanent with its words and the fix (the role assignment to make, the login to
// renew).
package azure
