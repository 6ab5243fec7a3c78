// Package forge is berth's view of the Git hosts' APIs (GitHub, GitLab, Gitea and Forgejo): the pull or merge
// requests of a repository, the permission of a user, commit statuses and the one comment berth keeps on a change.
// The reconciler's preview loop consumes the small Forge interface; each host's implementation, on the client
// library people use for it, lives in its own subpackage (forge/github, forge/gitlab, forge/gitea), and each has a
// wire-level emulator (forge/<host>/<host>emu) that the real client talks to over HTTP in tests.
//
// Rules every implementation keeps:
//   - A forge error is never evidence. A listing is returned only when every page was read; a 5xx, an HTML error
//     page, a truncated page, a 401/403, a rate limit or a timeout is an error (never an empty list), so that no
//     caller deletes a preview on it.
//   - Listing is cheap: an ETag from the previous call makes an unchanged listing a 304 (NotModified), which the
//     hosts do not count against the rate limit.
//   - What comes from a change (titles, branch names, labels, comment bodies) is untrusted text: implementations
//     bound it and never interpret it.
//   - Server text quoted in errors goes through schema/redact (bounded, cleaned, masked); the token never appears.
//   - Every HTTP request is reported to the optional Observer of the implementation's Options (op, HTTP status or
//     0, and the rate-limit remaining when the answer says it): ObserveTransport does it, the op travels in the
//     request's context (WithOp). The caller turns it into berth_forge_requests_total{forge,op,code} and
//     berth_forge_ratelimit_remaining{forge}.
//
// Optional capabilities, found by type assertion: LabelHistory (who added or removed a label, and when: what
// approving a fork's preview by a label needs; all three implement it).
//
// Non-goals: Git transport (package repos), webhooks (package repos/webhook: events only wake the loop, the forge
// is re-read), deciding what to deploy (the reconciler).
package forge
