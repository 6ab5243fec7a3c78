// Package gitlabemu is a stateful, wire-level emulator of the subset of GitLab's REST API v4 that
// repos/forge/gitlab uses, served by an httptest server on loopback so that the real client
// (gitlab.com/gitlab-org/api/client-go) talks to it over HTTP.
//
// Emulated endpoints (project given by numeric id or URL-encoded path, e.g. group%2Fapp):
//   - GET  /api/v4/user, GET /api/v4/users?username=
//   - GET  /api/v4/projects/:id (path_with_namespace, for fork merge requests' source project)
//   - GET  /api/v4/projects/:id/merge_requests?state=opened&page=&per_page=&order_by=&sort=
//   - GET  /api/v4/projects/:id/merge_requests/:iid
//   - GET  /api/v4/projects/:id/members/all/:user_id (access_level 10 guest, 20 reporter, 30 developer,
//     40 maintainer, 50 owner; 404 for a non-member)
//   - POST /api/v4/projects/:id/statuses/:sha, GET /api/v4/projects/:id/repository/commits/:sha/statuses
//     (the latest status per name unless all=true)
//   - GET/POST /api/v4/projects/:id/merge_requests/:iid/notes, PUT .../notes/:note_id
//   - GET  /api/v4/projects/:id/merge_requests/:iid/resource_label_events (paginated, oldest first; recorded by
//     LabelAs and UnlabelAs, Label and Unlabel acting as DefaultLabeler; a label already there, or one not there
//     to remove, records nothing; DeleteLabel leaves the events with "label": null, as GitLab does)
//
// Real behaviour kept: offset pagination with X-Page, X-Per-Page, X-Next-Page, X-Total, X-Total-Pages and a
// Link header (per_page at most 100, default 20); merge request states opened, closed, merged (and draft as a
// flag); a fork merge request has source_project_id != target_project_id; a note body is at most 1,000,000
// characters, a longer one answers 400 {"message":{"note":["is too long (maximum is 1000000 characters)"]}};
// errors are {"message": "404 Not found"} style JSON; an expired token answers 401 {"message":"401 Unauthorized"};
// rate limiting answers 429 with Retry-After and RateLimit-Limit/-Remaining/-Reset/-Observed headers.
//
// Where GitLab's documentation is silent, the emulator chooses and says so here:
//   - ETags: GitLab's Rack stack computes a weak ETag over a GET response body and answers If-None-Match with
//     304; the docs do not promise it for every endpoint. The emulator sets W/"<sha256 of body>" on every GET
//     and answers a matching If-None-Match with 304. A 304 does not count against the emulator's quota (the
//     RateLimit-Remaining header it carries does not drop); GitLab does not document whether it counts.
//   - The commit status description has no documented limit; the emulator accepts any length.
//   - The quota is a simple counter (Quota requests, then 429 until Reset).
//
// Faults (Fault): a status with a JSON or HTML body (also an HTML page with status 200), a truncated page (valid
// headers, body cut mid-JSON), a hang until the client gives up (timeouts), an expired token (401). Admin helpers
// (Open, Close, Merge, Push, Label, AddMember, AddUser, Comment) change state as the GitLab UI would.
// Requests counts every request served.
package gitlabemu
