// Package repos turns a source of configuration, a Git branch or a local directory, into immutable snapshots: a
// revision and a read-only file tree that never changes while it is handed out.
//
// Open picks the kind from the location: file://, http://, https://, ssh://, git:// URLs and scp-like
// user@host:path are Git remotes (through go-git); anything else is a directory path.
//
//   - A Git source lists the remote's refs on every Fetch and fetches only when the watched branch points to a
//     commit not yet in its bare repository under the cache directory. A fetch takes that one branch, no tags, except in
//     head-or-tag verification mode, where the annotated tags pointing at the head are fetched. The
//     commit's tree is then read object by object (no worktree checkout) into CacheDir/snapshots/<sha>/.
//     A force-push simply yields the commit the branch now points to. Revision is the commit SHA.
//   - A directory source hashes the tree (sorted paths, kinds, executable bits, link targets, contents; .git and
//     the cache directory are left out) into "sha256:<hex>" and copies it to CacheDir/snapshots/<hex>/ when the
//     hash is new. It re-hashes after copying and retries if the tree changed meanwhile. fsnotify watches the tree
//     (new subdirectories too) and Changes fires once per quiet period of Options.Debounce.
//
// Both kinds refuse absolute symlinks, symlinks whose target resolves outside the root and paths that escape it
// (ErrUnsafePath), and files over Options.MaxFileSize (ErrFileTooLarge). Symlinks that stay inside are written as
// copies of their targets, so a snapshot holds only directories and regular files. Trees are written to a temporary
// directory, made read-only (files 0444 or 0555, directories 0555) and renamed into place, so a failed or
// interrupted Fetch never leaves a half-written tree under a snapshot's name.
//
// Transport (auth.go, transport.go): Options.Credentials becomes HTTP basic auth, a bearer token, or an SSH key
// checked against Options.Credentials.KnownHosts strictly (ErrHostKey; no trust on first use; SSH credentials
// without KnownHosts fail at Open). HTTP(S) sources get their own client side: CABundle added to the system roots,
// ProxyURL or no proxy (the environment's proxy variables are ignored), and a response that is not Git's smart HTTP
// (an HTML page with 200) fails with ErrNotGitServer. go-git keeps one HTTP client per scheme for the process, so
// berth installs one dispatching client that takes each request's settings from its context (requests from other
// go-git users fall back to http.DefaultTransport). Options.MaxFetchSize (ErrFetchTooLarge) is counted on HTTP
// response bodies, ref listing included, and for every transport on the pack as it is written; for ssh:// and
// git:// a ref advertisement is bounded only by Options.Timeout. Options.MaxSnapshotSize bounds the sum of a
// commit's file sizes (ErrSnapshotTooLarge). Fetches are full, not shallow: go-git's shallow repositories fail later
// fetches after a force-push to an older commit (go-git/go-git#1443), and an incremental fetch already moves only
// the new objects. A failed fetch removes its half-written pack, so the next Fetch starts clean.
//
// Credentials (auth.go): Open registers every credential of the source with schema/redact, the process's one
// redaction choke point, before anything can fail: the URL's userinfo (a password with base64 of "user:password";
// for HTTP(S) a user name without password, which is then a token), Credentials (password, bearer token, the SSH
// private key whole and line by line, its passphrase), the proxy URL's userinfo and a go-git Options.Auth of a known
// kind. The log handler, the status API, the CLI's output and the state store mask them from then on, in every
// encoding. What a server says (an HTTP error page, an ERR line, an SSH server's stderr) reaches an error only
// bounded, cleaned of control characters and masked: an error page is cut to maxQuotedBody (400) bytes, the whole
// transport error to maxTransportError (1024). String and errors name the URL without its userinfo, also for a
// location that does not parse as a URL; the bare repository's remote on disk is that URL too, the URL's
// credentials being sent as go-git's basic auth.
//
// Non-goals: rendering or checking the files (schema, policies do that), webhooks (the caller calls Notify),
// submodules (left out with a warning), Git LFS.
//
// Caller's duties: Close the source. Give each source its own CacheDir (or none, for a temporary one removed by
// Close). Finish with a snapshot before keepSnapshots (4) newer ones have been fetched: older trees are deleted. Never
// write to Snapshot.Dir. Keep polling: Changes only makes a look happen sooner. Fetch calls are serialised.
//
// The caller's loop, in a sketch:
//
//	src, err := repos.Open(ctx, location, repos.Options{Branch: "main"})
//	defer src.Close()
//	for {
//		snap, err := src.Fetch(ctx)       // cheap when nothing moved
//		if err == nil && snap.Revision != seen {
//			render(snap.Dir); seen = snap.Revision
//		}
//		select {
//		case <-src.Changes():             // file event or Notify (webhook)
//		case <-time.After(jittered(poll)):
//		case <-ctx.Done():
//			return
//		}
//	}
//
// Known limit: go-git dials git:// remotes without a deadline, so a host that never answers the TCP handshake is
// bounded by the operating system's connect timeout; one that accepts and then stays silent is bounded by
// Options.Timeout like every other transport.
package repos
