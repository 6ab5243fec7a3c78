// Package githubemu is a wire-level emulator of the subset of GitHub's REST API (v3) that repos/forge/github
// uses, for one repository, on an httptest server on loopback. The real client (google/go-github) talks to it over
// HTTP; tests drive its state from the admin side (Open, ClosePR, Merge, Push, Label, LabelAs, Unlabel, UnlabelAs,
// AddCollaborator, AddComment,
// AddToken, ExpireToken, AddApp, AddInstallation, SetTokenTTL, RevokeAppTokens, SetNow) and inject faults (Inject).
//
// Emulated, with GitHub's shapes (paths are accepted with or without the Enterprise /api/v3 prefix):
//   - GET /user: the token's user.
//   - GET /repos/{o}/{r}/pulls?state=&sort=&direction=&per_page=&page=: per_page 30 by default, 100 at most, a
//     Link header with next/last/first/prev; GET /repos/{o}/{r}/pulls/{n}.
//   - GET /repos/{o}/{r}/collaborators/{user}/permission: {permission, role_name, user}; 404 for an unknown user.
//   - POST /repos/{o}/{r}/statuses/{sha}: 201; 422 for an unknown state, for a description over 140 characters
//     and after 1,000 statuses for one SHA and context. GET /repos/{o}/{r}/commits/{ref}/status: the latest
//     status per context (paginated) and the combined state.
//   - GET and POST /repos/{o}/{r}/issues/{n}/comments, PATCH /repos/{o}/{r}/issues/comments/{id}: a body over
//     65,536 characters is a 422 "Validation Failed" with the error "body is too long (maximum is 65536
//     characters)"; only the author (or a writer) may edit a comment.
//   - GET /repos/{o}/{r}/issues/{n}/events (paginated like every list, oldest first): "labeled"/"unlabeled"
//     events with actor and label, recorded by LabelAs and UnlabelAs (Label and Unlabel act as DefaultLabeler),
//     and "closed", "reopened", "merged" events by the author from ClosePR, Reopen and Merge. Labelling with a
//     label already there records an event again (GitHub does); removing one that is not there records none.
//   - Every GET 200 carries a weak ETag over its body; a request with a matching If-None-Match is a 304 with no
//     body, which does not lower X-RateLimit-Remaining (GitHub: "an authorized 304 does not count against your
//     primary rate limit"). Every other answer lowers it by one; at 0 the answer is 403 "API rate limit exceeded"
//     with X-RateLimit-Remaining: 0. X-RateLimit-Limit, -Remaining, -Used, -Reset and -Resource are sent.
//   - Authentication: "Authorization: Bearer <token>" or "token <token>"; an unknown or expired token is 401 "Bad
//     credentials".
//   - POST /app/installations/{id}/access_tokens, authenticated with the app's JWT ("Bearer <jwt>"): RS256 only,
//     verified against the public key the test registered with AddApp for the app named by iss; exp required, in
//     the future and at most 10 minutes ahead; iat not in the future (no leeway). A bad JWT is 401 "A JSON web
//     token could not be decoded" (or GitHub's words for an exp too far ahead); an installation that is not the
//     app's is 404. 201 {"token": "ghs_…", "expires_at", "permissions", "repository_selection"}; the token
//     authenticates as the installation's bot login until expires_at (SetTokenTTL, default one hour), then 401.
//     The call costs no quota here.
//
// Faults (Inject, for the next Count requests whose path and query contain Match): a 500 JSON error, a 502 with an HTML
// body, a 200 with an HTML body, a 200 whose JSON ends mid-document, a 200 with an empty body, no answer until
// the client gives up, a 401, and the secondary rate limits as 403 or 429 with Retry-After and GitHub's
// "secondary rate limit" documentation_url (the field go-github recognises them by).
//
// Where GitHub's documentation is silent, the emulator chooses, and says so here: the length limit of a status
// description is not documented (other tools cut at 140; the emulator refuses more with a 422 so that a caller
// that forgets to cut is caught); the ETag's exact form (GitHub sends weak ETags, W/"…"); the message of a 403 on
// editing another user's comment; the order of the combined status's statuses (here by context). Not emulated:
// check runs, deployments, the other /app endpoints, per-token permissions (the minted token has the bot's
// repository permission), GraphQL, webhooks, the x-poll-interval
// header.
//
// Requests counts every request that reached the server and those that counted against the quota.
package githubemu
