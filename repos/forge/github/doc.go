// Package github is forge.Forge for one GitHub (or GitHub Enterprise Server) repository, on
// github.com/google/go-github/v89 over REST v3.
//
// Calls, per Forge method:
//   - ListOpen: GET /repos/{o}/{r}/pulls?state=open&sort=updated&direction=desc&per_page=100, every page
//     (Link header). The ETag it returns packs every page's ETag; the next ListOpen asks each page with
//     If-None-Match and answers NotModified only when all of them are 304. An idle poll of a repository with up
//     to 100 open pull requests is one request, and a 304 does not count against the rate limit.
//   - Get: GET /repos/{o}/{r}/pulls/{n}; closed with merged (or merged_at) is StateMerged. A null head.repo (a
//     deleted fork) counts as a fork.
//   - Permission: GET /repos/{o}/{r}/collaborators/{user}/permission; role_name maintain is write, triage is read;
//     a 404 (no such user) wraps forge.ErrNotFound. A login that is not GitHub-shaped is refused before any request.
//   - Statuses: GET /repos/{o}/{r}/commits/{sha}/status (every page): the latest state per context.
//   - SetStatus: the same read, then POST /repos/{o}/{r}/statuses/{sha} only when the context's state or (cut)
//     description differ. Descriptions are cut to 140 characters.
//   - Comments: GET /repos/{o}/{r}/issues/{n}/comments, every page, oldest first.
//   - UpsertComment: GET /user once (the token's own login, kept for the Forge's life), the comments, then PATCH
//     /repos/{o}/{r}/issues/comments/{id} of the first comment written by that login whose body starts with the
//     marker, or POST a new one. Nothing is sent when the body is unchanged. Comments by anyone else, marker or
//     not, are never edited. Bodies are cut to 65,536 characters with CutNote.
//   - LabelEvents (forge.LabelHistory): GET /repos/{o}/{r}/issues/{n}/events?per_page=100, every page, oldest
//     first; the "labeled" and "unlabeled" events, with actor.login, label.name and created_at (the other events
//     are skipped). An event without a label name or time fails the read.
//
// The other reads (Get, Permission, Statuses, Comments, LabelEvents, and so SetStatus and UpsertComment) revalidate: the
// last answer of each path is kept with its ETag (up to 1 MiB each, 512 paths) and asked again with
// If-None-Match, so an unchanged read is a 304 that costs no quota and still reflects the host's state at that
// moment. An idle reconcile pass of one preview (Get, SetStatus unchanged, UpsertComment unchanged) is 3 requests
// (4 with ListOpen), none counted against the rate limit.
//
// A pull request's text (title, refs, author, labels) is passed through as data, made valid UTF-8 and bounded
// (1,024 characters for the title and refs, 100 labels of 256); a head that is not a hex SHA fails the read.
//
// Every answer is read whole and decoded strictly: an empty body, a body that is not JSON (an HTML page with 200 or
// 502), a document that ends early (a truncated page), a 5xx, 401, 403, a rate limit or a timeout is a
// *forge.Error, never a partial or empty list. Errors quote GitHub's message through redact.Body; Temporary is
// set for 5xx, 429, rate limits, timeouts and transport failures, and RetryAfter from Retry-After (secondary
// limits) or X-RateLimit-Reset (primary). go-github remembers a primary or secondary limit and refuses further
// calls until it passes without sending them (also an error).
//
// Authentication is a token (Options.Token: a personal access token, fine-grained or classic, or any token the
// caller obtained: scopes pull requests read, issues write (comments), commit statuses write, metadata read) or a
// GitHub App installation (Options.App: app id, installation id, RSA private key in PEM; the app needs pull
// requests read, issues write, commit statuses write, metadata read). For an App, a JWT (RS256, iat now-60s, exp
// now+9min, iss the app id) is traded for an installation token with POST /app/installations/{id}/access_tokens.
// The token is used until 5 minutes before its expires_at (half-way for a token that lives under 10 minutes;
// Options.Now is the clock), then replaced; and replaced once more when GitHub answers a request 401, which is
// then sent again once with the new token (a second 401 is the answer). A key that does not parse is refused by
// New; a 401 or 404 of the token call is a *forge.Error that is not Temporary (a 404, a missing installation,
// never wraps forge.ErrNotFound). Tokens, PAT or minted, the JWTs and the key are registered with schema/redact
// and never logged.
//
// With Options.Observer every request is reported (forge.Observer: op, HTTP status, 0 for a transport failure)
// and so is X-RateLimit-Remaining of every answer that carries it.
//
// Rate reports the last X-RateLimit headers (for berth_forge_ratelimit_remaining).
//
// Not here yet: check runs (GitHub App only), deployments, the x-poll-interval header.
//
// The emulator in githubemu serves this package's tests.
package github
