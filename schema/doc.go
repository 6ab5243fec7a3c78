// Package schema turns a repository of CUE files into berth's typed desired state.
//
// A repository is the set of .cue files at the root of a directory (subdirectories are ignored), all with the same
// package clause or none. Its format is the CUE schema in berth.cue (see Source): targets, environments (each bound
// to a branch) and workloads. Every definition is closed, so a misspelled field is an error. Per environment, the
// rendered workloads are the top-level workloads unified with that environment's own `workloads`: an environment can
// fill in fields, pick among defaults (`replicas: *2 | int`) or add workloads; a conflicting concrete value is an
// error naming both places. The schema is also served at the import path "berth.dev/schema" for editors and for
// users who want to refer to #Workload themselves; only it and the CUE standard library can be imported.
//
// Secrets are declared by name (top-level `secrets`, unified with each environment's own) with where the value comes
// from (a SOPS file of the repository, or a reference to a store) and used by name (`env: X: secret: "db"`, `files`);
// Load checks the shapes and that every use names a declared secret, never reads a value (package schema/secrets
// decrypts SOPS files), and keeps an in-memory copy of the encrypted SOPS files in Config.Root.
//
// Non-goals: fetching repositories (package repos), policy checks (package policies), deciding whether a provider
// can honour a field (providers), and any network access: Load reads local files only.
//
// Caller's duties: pass a directory that does not change during the call (a repos.Snapshot's Dir). Treat a
// schema.Errors result as the user's mistake (report it, change nothing that runs); any other error is an I/O
// failure. Load is safe for concurrent use: each call has its own CUE context.
//
// How Load works:
//
//	files := parse *.cue at the root, sorted by name          // syntax errors → Errors
//	root  := build one instance (imports: berth.dev/schema, stdlib) and evaluate it
//	check top-level fields and names; each target & #Target
//	for each top-level workload: v := #Workload & w; validate concrete; render once (defaults, durations,
//	    quantities, one health kind, provider is a target)
//	for each environment: validate against #Environment; for each workload name (top-level ∪ environment's):
//	    no override → copy of the shared rendering; else render(v & override)
//	return Config, or Errors sorted by file, line, column
//
// Workloads are checked one by one against #Workload rather than the whole tree against #Config: it keeps errors
// local and lets environments share renderings, so 10,000 workloads load in a few seconds.
package schema
