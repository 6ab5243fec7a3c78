// Package webhook receives notifications from Git hosts and turns each authenticated push into a call of
// notify(source), so that the source looks at its remote sooner (repos.Source.Notify), and, with Options.OnEvent,
// each authenticated pull-request, comment or status event into an Event for the preview loop. The payload is never
// trusted: the revision in it is ignored, and the source still lists the remote's refs itself; of a pull-request
// event only its kind and, for logging, the change's number are read, and the loop re-reads the forge.
//
// A Receiver is an http.Handler for POST /hooks/<source>. For each request, in order:
//
//	method is not POST                          → 405 bad_method
//	no hook named <source>                      → 404 not_found (metric source="unknown")
//	the kind's signature header is missing      → 401 unauthorized
//	body over Options.MaxBody (1 MiB)           → 413 too_large
//	signature or token does not match           → 403 forbidden
//	ping, test or other event                   → 200 ignored
//	change, comment or status without OnEvent   → 200 ignored
//	over the source's rate limit                → 429 rate_limited
//	otherwise notify(source) for a push,
//	  then OnEvent(event) when set              → 202 accepted
//
// Classify names the event (EventPush, EventChange, EventComment, EventStatus or EventOther) from the event header
// and, only where the header leaves it open or for the change's number, from a few fields of the payload (at most
// 1 MiB of it is decoded; it never fails, and a payload that does not decode leaves the number 0):
//
//	GitHub  push, create                                   push
//	        pull_request, pull_request_review(_thread)     change   number (or pull_request.number)
//	        pull_request_review_comment                    comment  pull_request.number
//	        issue_comment on a pull request                comment  issue.number (an issue's comment: other)
//	        status                                         status
//	        check_suite, check_run, workflow_run           status   the first of pull_requests
//	Gitea,  X-Forgejo-Event(-Type), else X-Gitea-Event(-Type):
//	Forgejo push, create                                   push
//	        issue_comment, pull_request_comment, …         comment  issue.number when is_pull (else other)
//	        pull_request* (pull_request_sync, _label, …)   change   number
//	        status, workflow_run, workflow_job             status
//	GitLab  Push Hook, Tag Push Hook, System Hook push     push
//	        Merge Request Hook, System Hook merge_request  change   object_attributes.iid
//	        Note Hook on a merge request                   comment  merge_request.iid (other notes: other)
//	        Pipeline Hook                                  status   merge_request.iid
//	Bitbucket repo:push, repo:refs_changed                 push
//	        pullrequest:*, pr:* (comment ones: comment)    change   pullrequest.id, pullRequest.id
//	        repo:commit_status_*                           status
//	Generic every event but ping                           push
//
// Change and comment events share the source's rate limit with pushes: a flood of them still only wakes the loop
// at the source's rate.
//
// Signatures are compared in constant time (hmac.Equal, and subtle.ConstantTimeCompare over SHA-256 digests for
// GitLab tokens, so a token's length leaks nothing). Neither the secret nor the expected signature is ever logged or
// echoed; New registers each secret with schema/redact, so every output of the process masks it in any encoding.
// Each source has its own token bucket (golang.org/x/time/rate) driven by Options.Now, so tests freeze time.
// With Options.Metrics, berth_webhook_requests_total{source,result} counts every request by the results above.
//
// Configuring the Git host (the URL is https://<berth>/hooks/<source>, the secret is Hook.Secret):
//
//   - GitHub (Kind "github"): Settings → Webhooks → Add webhook. Content type application/json, "Secret" set,
//     "Just the push event", or for previews "Let me select individual events": Pushes, Pull requests, Issue
//     comments, Statuses, Check suites (and Check runs). Checked: X-Hub-Signature-256: sha256=<hex
//     HMAC-SHA256(body)>. Events push and create notify; ping (sent when the hook is created) is answered 200.
//   - GitLab (Kind "gitlab"): Settings → Webhooks. "Secret token" set, trigger "Push events" and "Tag push events"
//     (for previews also "Merge request events", "Comments" and "Pipeline events").
//     Checked: X-Gitlab-Token equals the secret. Events "Push Hook", "Tag Push Hook" and system hooks whose
//     object_kind is push or tag_push notify. GitLab's "Test" button sends an ordinary push event, which notifies.
//   - Gitea and Forgejo (Kind "gitea"): Settings → Webhooks → Add webhook → Gitea/Forgejo. Content type
//     application/json, "Secret" set, trigger on "Push events". Checked: X-Gitea-Signature and X-Forgejo-Signature,
//     each the hex HMAC-SHA256 of the body without prefix (every one present must match). Events push and create
//     notify. "Test delivery" sends an ordinary push event, which notifies. For previews also trigger on "Pull
//     Request", "Pull Request Synchronized", "Pull Request Labeled", "Pull Request Comment" and "Commit Status".
//   - Bitbucket Cloud (Kind "bitbucket"): Repository settings → Webhooks → Add webhook, "Secret" set, trigger
//     "Repository push". Bitbucket Data Center: Repository settings → Webhooks → Create webhook, "Secret" set, event
//     "Repository: Push". Checked: X-Hub-Signature: sha256=<hex>. Events repo:push (Cloud) and repo:refs_changed
//     (Data Center) notify; diagnostics:ping ("Test connection") is answered 200.
//
// Anything else (Kind "generic"): a CI job or script signs the body and sends X-Berth-Signature: sha256=<hex>. Every
// signed call notifies except one with X-Berth-Event: ping.
//
//	body='{}'; sig=$(printf %s "$body" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)
//	curl -X POST -H "X-Berth-Signature: sha256=$sig" -d "$body" https://berth.example/hooks/app
//
// Non-goals: reading revisions, branches, commits, titles or comment bodies from payloads (a "/berth preview"
// command is read from the forge, by its author's permission, not from the event); routing one hook to several sources; TLS and
// client IP allow-lists (the server in front does that); replay protection (a replayed push only causes one more look,
// and the rate limit bounds it).
//
// Caller's duties: mount the Receiver so that it sees the unmodified path (mux.Handle(webhook.PathPrefix, rcv), or a
// pattern with a {source} wildcard); give a notify that never blocks (a non-blocking send on a channel of capacity 1,
// or Source.Notify), and the same of OnEvent; keep polling, since hooks get lost; serve over TLS so secrets and
// bodies are not exposed.
//
// In a sketch:
//
//	rcv, err := webhook.New([]webhook.Hook{{Source: "app", Kind: webhook.GitHub, Secret: secret}},
//		func(name string) { sources[name].Notify() },
//		webhook.Options{Metrics: prometheus.DefaultRegisterer, Logger: log,
//			OnEvent: func(ev webhook.Event) { previews.Wake(ev.Source, ev.Change) }})
//	mux.Handle(webhook.PathPrefix, rcv)
package webhook
