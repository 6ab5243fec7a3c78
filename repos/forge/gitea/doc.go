// Package gitea is berth's forge.Forge for Gitea and Forgejo, on the official SDK code.gitea.io/sdk/gitea
// (v0.25.1), pointed at a server by Options.BaseURL.
//
// How it keeps the rules of package forge:
//   - Complete or an error. ListOpen follows Link rel="next" until there is none, and checks the pages against
//     X-Total-Count and for a pull request seen twice (the listing moved while read), and, when a proxy stripped
//     both Link and X-Total-Count, reads on until an empty page; a 5xx, an HTML page (even
//     with status 200), a JSON body cut short, a 401/403, a 429, a timeout or a transport failure is a
//     *forge.Error and never a list. The same holds for statuses (every page) and comments.
//   - Cheap polls. When the server sends an ETag on a single-page listing (a proxy, or a future Gitea), the next
//     ListOpen sends If-None-Match and a 304 is NotModified: one request, no quota. Gitea itself sends no ETag on
//     API listings; then, and for listings of more than one page, the ETag is berth's own digest of the complete
//     listing ("berth-sha256:..."), so an unchanged listing is still NotModified for the caller, but it cost the
//     full read (Gitea has no API rate limit by default, so nothing is counted).
//   - Requests. The first call reads GET /api/v1/version once (the SDK needs it; later clients are given the
//     version and ask no more). UpsertComment reads GET /user once: the token's user is the only author whose
//     comments can be berth's, so a look-alike with the same marker by anyone else is never edited. An idle poll is
//     one request.
//   - SetStatus cuts the description to StatusDescription (140) characters and sends nothing when the same state
//     and description is already the newest status of that context: first from what this Forge set, else from
//     the forge's statuses listing (so a restart does not repeat statuses). Statuses reads the listing, not the
//     combined status, because the SDK takes an undecodable 200 on the combined status for "none yet". Gitea's
//     "warning" state reads as failure.
//   - UpsertComment puts marker first, cuts the body to CommentBytes (DefaultCommentBytes: Gitea names no limit)
//     with a note, edits the oldest own comment holding the marker (not at all if its body is already the same),
//     or creates one.
//   - Errors quote Gitea's "message" (or the body when it is not JSON) through redact.Body; the token is
//     registered with schema/redact in New and is sent only in the Authorization header. Temporary is set for
//     5xx, 408, 429, a 403 with Retry-After or X-RateLimit-Remaining 0, timeouts and undecodable 2xx answers;
//     RetryAfter from Retry-After (seconds or a date), else from X-RateLimit-Reset when the quota is spent.
//   - LabelEvents (forge.LabelHistory) reads GET /repos/{o}/{r}/issues/{n}/timeline?page=N&limit=PageSize and keeps
//     the entries of type "label" (added when the body is "1", removed otherwise: Gitea's convention), by their
//     user. It does not use the SDK's ListIssueTimeline: the SDK (v0.25.1) types TimelineComment.Label as a list,
//     where Gitea answers one object, so a label entry does not decode. Gitea's timeline sends no Link and an
//     X-Total-Count that counts the page (not the timeline), and a page may hold fewer entries than asked (Gitea
//     drops cross-references the token may not see after paging; a limit above MAX_RESPONSE_ITEMS is lowered), so
//     pages are read until an empty one (Gitea answers "null" past the end): an idle read of a timeline of up to 50 entries is two requests. An entry
//     seen twice is an error. Without a total to check against, an entry deleted while the pages are read (a
//     comment, or a label's entries when the label is deleted) can hide one entry at a page boundary until the
//     next read. When a proxy sends ETags, the last history is kept and revalidated page by page (all 304s: the
//     kept one). Checked against Gitea v1.27.3's source: ListIssueCommentsAndTimeline pages with
//     utils.GetListOptions (page 1 when absent), SetTotalCountHeader(len(page)); a label's comment has Content "1"
//     when added; deleting a label deletes its comments.
//   - Permission reads GET /repos/{o}/{r}/collaborators/{user}/permission ("owner" counts as admin, an unknown word
//     as none). Gitea answers another user's permission only to a repository admin (403 otherwise), so the token
//     needs admin on the repository (scopes read:user, write:repository, write:issue) for fork approval to work.
//   - Draft is the "draft" field, or Gitea's default work-in-progress title prefixes ("WIP:", "[WIP]") for servers
//     that predate the field.
//   - Untrusted text (titles, branch names, labels, logins) is kept as data, cut to 4 KiB, invalid UTF-8
//     replaced. A head repository the forge does not name (a deleted fork) counts as a fork.
//
// The SDK keeps one context per client, so each call makes its own small client bound to the call's context;
// all share one http.Client and its connections. Each request is bounded by Options.Timeout.
//
// With Options.Observer every request is reported (forge.Observer: the Forge method's op, "version" for the
// version read, the HTTP status, 0 for a transport failure). Gitea sends no rate-limit headers of its own; an
// X-RateLimit-Remaining set by a limiter in front of it is reported when present.
//
// Forgejo: the same calls and shapes; its version string ("7.0.1+gitea-1.22.0") parses as a version newer than
// every gate of the SDK. No difference was found for the calls used here.
package gitea
