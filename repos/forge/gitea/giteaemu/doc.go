// Package giteaemu is a wire-level emulator of the Gitea (and Forgejo) REST API /api/v1, for one repository,
// stateful, on an httptest server, so that berth's forge/gitea implementation is tested through the real SDK
// (code.gitea.io/sdk/gitea) over HTTP.
//
// Emulated (the subset berth uses):
//   - GET /api/v1/version (the SDK asks at client creation; answers Version);
//   - GET /api/v1/user (the token's user);
//   - GET /repos/{o}/{r}/pulls?state=&page=&limit= (newest first, Link rel=next/last/first/prev, X-Total-Count),
//     GET /repos/{o}/{r}/pulls/{n};
//   - GET /repos/{o}/{r}/collaborators/{user}/permission ({"permission": none|read|write|admin|owner, "role_name",
//     "user"}; 404 for a user that does not exist; 403 "Only admins can query all permissions, ..." when the token's
//     user is not a repository admin and asks about someone else, as Gitea does);
//   - POST /repos/{o}/{r}/statuses/{sha} (states pending, success, error, failure, warning; 422 otherwise; 403
//     without write permission), GET /repos/{o}/{r}/commits/{ref}/statuses (paginated, newest first) and
//     GET /repos/{o}/{r}/commits/{ref}/status (combined: the newest per context);
//   - GET and POST /repos/{o}/{r}/issues/{n}/comments, PATCH /repos/{o}/{r}/issues/comments/{id} (403 unless the
//     poster or an admin);
//   - GET /repos/{o}/{r}/issues/{n}/timeline?page=&limit= as Gitea answers it: the comments (type "comment") and
//     label changes (type "label", body "1" added, "" removed, with "label" one object) oldest first; paginated
//     (page 1 when absent, as Gitea 1.27 does); X-Total-Count counts the entries of the answer; no Link header; a
//     page past the end is "null" (Gitea encodes a nil slice). Label entries are
//     recorded by LabelAs and UnlabelAs (Label and Unlabel act as DefaultLabeler; a label already there, or one
//     not there to remove, records nothing) and numbered from 1,000,000 so that they move no pull request's
//     number. SetTimelineETags(true) adds an ETag and 304s, as a caching proxy would (Gitea sends none).
//
// Limits and error shapes. Gitea answers errors as {"message": "...", "url": "<swagger>"}; 404 is "The target
// couldn't be found."; a missing or refused token is 401. Paging follows Gitea's defaults: DEFAULT_PAGING_NUM 30
// when limit is absent, MAX_RESPONSE_ITEMS 50 as the ceiling (a larger limit is lowered silently). The issue
// comment listing is not paginated (Gitea takes since/before only and answers every comment, with X-Total-Count).
//
// Where Gitea's docs are silent, and what the emulator chooses:
//   - Comment size: no documented limit (the column is LONGTEXT on MySQL, TEXT elsewhere). The emulator refuses
//     bodies over DefaultCommentLimit characters (berth's conservative budget) with 422 and a message
//     "[Body]: body is too long ..."; SetCommentLimit changes it.
//   - ETags: Gitea sends none for API listings. The emulator sends an ETag on the pulls listing by default and
//     answers If-None-Match with 304 (as GitHub does, or a caching proxy in front of Gitea); SetETags(false) behaves
//     like Gitea itself. A 304 costs no quota.
//   - Rate limits: Gitea and Forgejo have none on the API by default (a reverse proxy may add one). The emulator
//     sends X-RateLimit-Limit/Remaining/Reset on every answer so tests can see that a 304 costs nothing, and
//     injects 429 or 403 with Retry-After; SetQuota(0) makes every counted request a 403 "API rate limit exceeded"
//     with X-RateLimit-Remaining: 0 and a reset an hour after the emulator's fixed clock (Now).
//   - StripPaging(true) drops Link and X-Total-Count, as a proxy might.
//
// Faults (Fail, FailQuery): a 500 in Gitea's shape, an HTML page with 200 or 502, a 200 whose JSON is cut in
// half, an answer that never comes (until the request's context ends), 401 (expired token; ExpireToken makes it
// permanent), 429 and 403 secondary limits with Retry-After: 30.
//
// Admin side for tests: Open, ClosePull, MergePull, Push (new head SHA), Label, LabelAs, Unlabel, UnlabelAs,
// SetNow (the clock that stamps changes; fixed by default), Collaborator, AddUser, Comment
// (as any user), Comments, Statuses; Requests counts answered API requests by operation ("GET /pulls",
// "POST /statuses", "PATCH /comments/{id}", ...; "" for all; /version is not counted), Remaining the quota.
//
// Forgejo speaks the same /api/v1 for these calls; its /api/v1/version answers e.g. "7.0.1+gitea-1.22.0", which the
// SDK parses as 7.0.1 (newer than every Gitea gate it checks).
package giteaemu
