// Package preview runs pull-request previews: for every open pull request that the base branch's `previews: pr:`
// section selects, an environment `pr-<N>` copying the base environment, with the workloads of the pull request's
// head, on the base environment's targets; and it keeps berth in the review loop (one comment per preview, edited
// in place, and a commit status).
//
// The controller is level-based like the environment controller. Each pass:
//
//  1. fetches and loads the base branch (trusted: targets, policies, preview settings, secret declarations);
//  2. lists the open pull requests (one conditional request per page: an unchanged listing costs no quota);
//  3. decides per pull request: not selected, awaiting approval (a fork), gated (statuses not green yet), queued
//     (over `max`), or deploy its head; and per existing preview (known here or found on the runtimes by their
//     labels) whether it must go: only when a complete listing and a fresh read of that pull request say it is
//     closed, unselected or expired;
//  4. hands each preview's work to one worker at a time: a newer head cancels an older apply, a teardown cancels a
//     deploy.
//
// Lifecycle of one preview, as Status.State shows it: discovered → awaiting-approval | gated | queued → applying →
// ready | failed → expiring → destroying → gone.
//
// Trust: the head is untrusted input. It is fetched from the base repository's pull ref, evaluated under the same
// bounds as any revision, and only its workloads of the base environment are used, field by field as `override`
// allows (schema.CheckPreviewHead). A fork's head is deployed only once a user with write permission approved that
// very commit, and never gets secrets.
//
// A forge error is never evidence: an error, a truncated or empty page, a timeout or a rate limit changes nothing
// that runs.
package preview
