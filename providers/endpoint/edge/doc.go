// Package edge is berth's on-prem edge: a long-lived TCP forwarder (`berth edge`) that serves stable names
// ("host:port" listen addresses) in front of workload copies, and the endpoint.Router client ("edge" type) the
// controller uses to tell it what to serve. The edge keeps forwarding while no controller runs, so a controller
// can be killed at any time during a migration without a failed client connection.
//
// # Routes
//
// A route is one stable name = one listen address, an owner (endpoint.Owner) and members (endpoint.Member:
// target, host:port addresses, an optional providers.Watch, a weight 0..100). For each accepted connection the
// edge picks a member by weight (a seeded random source, Options.Rand), then one of its ready addresses
// round-robin; a dial that fails tries the member's next address, then the other members by weight; only when
// every member of weight > 0 failed, the ready weight-0 members (a draining old copy beats a failed request); the
// addresses the probes gave up on come last. Bytes are copied both ways with half-closes passed on. Connections
// are counted per member (endpoint.Drainer).
//
// Ready: every address is probed every ProbeInterval (a TCP connect, or GET Watch.HealthPath answering 2xx or
// 3xx). An address that failed its last two probes is skipped while another is ready. Addresses the controller
// gave are ready until a probe says otherwise; addresses a watch found get connections once a probe passed.
//
// Watches: a member with a Watch follows its replicas itself every WatchInterval, by the ownership labels alone:
// WatchContainers lists the running containers on Watch.Engine carrying all of Watch.Labels, at the host port
// their Watch.Port/tcp is published on (127.0.0.1, or a wildcard: the engine's host, 127.0.0.1 for a local
// engine); WatchTasks lists the running tasks of the swarm services carrying the labels, at their node's address
// and the port published in host mode for Watch.Port. The member's addresses become what the watch found; a watch
// that fails keeps the addresses it had. The addresses a watch finds are not persisted: after a start, a watch
// member serves its Addresses until the first look (at once).
//
// State: the table (routes as the controller set them) is a JSON file, replaced atomically (temporary file,
// fsync, rename, fsync of the directory) on every change before the change is answered, and read at start: the
// listeners are open again before any controller comes back. A SIGKILL at any point leaves the old or the new
// table, whole. A file that does not parse stops the start (it is never overwritten by an empty table). A route
// whose address cannot be opened at start stays in the table and is retried every ProbeInterval.
//
// # Admin API
//
// HTTP/JSON on a unix socket (mode 0600) or a loopback TCP address; there is no authentication, so any other TCP
// address is refused. Request bodies are bounded by MaxBodyBytes. Errors answer ErrorBody {"error", "code"}.
//
//	GET    /healthz                 200 "ok"
//	GET    /v1/routes[?instance=I]  200 List {"routes": [Route...]}
//	GET    /v1/routes/{name}        200 Route; 404 not_found
//	PUT    /v1/routes/{name}        body PutRequest {"owner", "ttl", "members"}; 200 Route once applied and persisted;
//	                                400 bad_request (name, owner, body) or bad_member (endpoint.CheckMembers, an
//	                                address not host:port, a bad watch); 409 not_owned (another owner's name);
//	                                409 address_in_use, 503 listen (the address cannot be opened); 500 state (not
//	                                persisted). On any error the table is unchanged.
//	DELETE /v1/routes/{name}?instance=I&environment=E&workload=W
//	                                204 (also when there is no such route); 409 not_owned. The listener closes at
//	                                once; open connections finish, or are closed after DrainGrace.
//
// {name} is the listen address, path-escaped ("127.0.0.1:8443", "%5B%3A%3A1%5D%3A8443"). A Route is
//
//	{"name": "127.0.0.1:8443", "owner": {"instance", "environment", "workload"}, "ttl": "1m0s",
//	 "listening": true, "listenError": "...",
//	 "members": [{"target", "addresses", "watch", "weight",          // as set
//	              "resolved": [{"address", "ready", "fails"}],       // what the edge forwards to
//	              "connections": 3, "watchError": "..."}]}
//
// # Router client
//
// The "edge" router type (a `dns:` entry {type: "edge", admin: "unix:///run/berth/edge.sock"}; Settings) is a
// Router, Drainer and Lister over that API. Set returns once the edge applied and persisted the table. Connection refused
// (the edge restarting), a missing socket and 5xx answers are retried with backoff and jitter, bounded by ctx;
// 409 not_owned is endpoint.ErrNotOwned, 400 is a Permanent endpoint.ErrBadMember (or bad request).
//
// Non-goals: TLS, HTTP routing (the edge forwards TCP), UDP, authentication of the admin API (it is local),
// host-name members, persisting what watches find.
//
// Caller's duties: run one edge per state file; point the controller's `edge` entry at its admin address; give
// members the addresses (or watches) of ready copies; after a member leaves, wait for its Connections to reach 0
// before stopping the copy.
//
// Sketch:
//
//	Start: read state → listen on every route → serve admin; loops: probe every address, look at every watch
//	accept(conn): for addr in candidates(route) { if dial(addr) ok { member.conns++; splice; member.conns--; return } }
//	PUT: check → listen (a new name) → write state → apply; DELETE: write state → close listener → drain
package edge
