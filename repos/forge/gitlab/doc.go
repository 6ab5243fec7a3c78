// Package gitlab is forge.Forge for one GitLab project, on gitlab.com/gitlab-org/api/client-go (REST v4).
//
// Calls: merge requests GET /projects/:id/merge_requests?state=opened (order_by=updated_at, sort=desc,
// per_page=100, every page); permissions GET /users?username= then /projects/:id/members/all/:user_id (access
// level 10 guest → none, 20 reporter → read, 30 developer → write, 40 maintainer and 50 owner → admin; a
// non-member is none); statuses POST /projects/:id/statuses/:sha and GET
// /projects/:id/repository/commits/:sha/statuses (latest per name); notes GET/POST
// /projects/:id/merge_requests/:iid/notes and PUT .../notes/:note_id; label events (forge.LabelHistory) GET
// /projects/:id/merge_requests/:iid/resource_label_events (per_page=100, every page; action add or remove,
// user.username, label.name, created_at; a label deleted since reads as "label": null, Label "").
//
// Label events revalidate like ListOpen: the last complete history of each merge request (512 at most) is kept
// with its pages' ETags, the next LabelEvents asks each page with If-None-Match, and when every page is a 304 and
// no page follows, the kept history is the answer (an idle read is one 304 per page of 100 events).
//
// Listing and ETags: the ETag given back by ListOpen holds the ETag of every page read. The next ListOpen sends
// each page's ETag as If-None-Match; when every page answers 304 the listing is NotModified (an idle poll costs
// one request per page, one for up to 100 open merge requests). Sorting by updated_at makes every change (a new
// commit, label, title, a reopen) move that merge request to page 1, and a merge request leaving the list
// changes the page it was on, so an unchanged set of pages means an unchanged listing. When any page differs the
// whole listing is read again without If-None-Match.
//
// Costs: an idle ListOpen is one 304 per page of 100; SetStatus is one GET (filtered by name) and a POST only
// when the state or description differs; UpsertComment is GET /user once per Forge, one GET per 100 notes, and
// a PUT or POST only when the body differs.
//
// Own user: the token's user is read once with GET /user (on the first UpsertComment) and kept; only notes by
// that user whose body starts with the marker are berth's. System notes are never returned by Comments.
//
// State mapping: opened (and locked, GitLab's transient merging state) → open, closed → closed, merged →
// merged; Draft is GitLab's draft flag. A fork merge request (source_project_id != target_project_id) has Fork
// set, and HeadRepo is the source project's path_with_namespace (GET /projects/:id, kept per id); a deleted
// or invisible source project leaves HeadRepo empty and Fork true (never ErrNotFound for the change). Commit
// statuses: berth's failure and error are both sent as failed; GitLab's running is read as pending, failed as
// failure, canceled and skipped as error.
//
// GitLab's commit status is a state machine: a pending or running status refuses the state it already holds
// (400 "Cannot transition status via :enqueue from :pending") and pending after running, and keeps its old
// description then. So a new description on a pending status is sent as running (Statuses reads it back as
// pending), a pending asked of a running status keeps the running one and its words, and that 400 for the
// state asked is taken as done.
//
// Limits: a note is at most 1,000,000 characters (GitLab's documented note limit); a longer body is cut with a
// note. GitLab documents no limit for a commit status description; this package cuts it to 255 characters (our
// choice, the size of GitLab's varchar columns).
//
// Errors: the client's retries are turned off (the reconciler owns retries), and its client-side rate limiter
// too. Every failure is a *forge.Error with the host's words through redact.Body; 5xx, 429, timeouts, transport
// failures and answers that are not JSON (an HTML page, a truncated page) are Temporary; RetryAfter comes from
// Retry-After, or RateLimit-Reset when the quota is spent. The token is registered with schema/redact.
//
// With Options.Observer every request is reported (forge.Observer: the Forge method's op, the HTTP status, 0 for
// a transport failure) and so is RateLimit-Remaining of every answer that carries it.
package gitlab
