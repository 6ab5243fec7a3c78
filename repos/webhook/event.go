package webhook

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"unicode/utf8"
)

// EventKind is what an authenticated call asks berth to look at again.
type EventKind string

// Event kinds.
const (
	// EventPush: a branch or tag moved; the source is told (notify).
	EventPush EventKind = "push"
	// EventChange: a pull or merge request was opened, pushed to, labelled, closed, reviewed…
	EventChange EventKind = "change"
	// EventComment: a comment on a pull or merge request (a "/berth preview" command, maybe).
	EventComment EventKind = "comment"
	// EventStatus: a commit status, check suite, check run, workflow run or pipeline changed (a gate, maybe).
	EventStatus EventKind = "status"
	// EventOther: anything else (pings, issues, releases…): ignored.
	EventOther EventKind = "other"
)

// Event is what the Receiver learned of one authenticated call. It only says when to look: the receiver of an
// Event re-reads the forge, and nothing else in the body is trusted.
type Event struct {
	// Source is the hook's source name.
	Source string
	Kind   EventKind
	// Name is the host's event name as its header said ("pull_request", "Merge Request Hook",
	// "pull_request_sync"…), made valid UTF-8 and cut to 64 bytes: untrusted, for logs.
	Name string
	// Change is the pull or merge request number the payload names (1 to 2³¹-1), 0 when it names none or the
	// body was not read: untrusted, for logs and as a hint of which change to look at first.
	Change int
}

// maxParse bounds the body the classifier decodes (a GitHub pull_request payload is tens of KiB); a larger body,
// possible only with Options.MaxBody raised past it, is classified by its headers alone.
const maxParse = 1 << 20

// maxName bounds Event.Name.
const maxName = 64

// Classify names the kind of an authenticated call of a hook of kind k from its headers and, where the headers
// leave it open (a comment on an issue or on a pull request, a GitLab system hook) or to find the change's
// number, from the payload: only the few fields it needs are decoded, from at most 1 MiB. It never fails: an
// unreadable payload leaves Change 0 and, where the kind depends on it, the kind that wakes (comment) or, for a
// GitLab system hook, other. Source is left empty.
func Classify(k Kind, hdr http.Header, body []byte) Event {
	var ev Event
	switch k {
	case GitHub:
		ev = classifyGitHub(hdr.Get("X-GitHub-Event"), body)
	case Gitea:
		ev = classifyGitea(hdr, body)
	case GitLab:
		ev = classifyGitLab(hdr.Get("X-Gitlab-Event"), body)
	case Bitbucket:
		ev = classifyBitbucket(hdr.Get("X-Event-Key"), body)
	case Generic:
		ev.Name = hdr.Get("X-Berth-Event")
		ev.Kind = EventPush
		if ev.Name == "ping" {
			ev.Kind = EventOther
		}
	default:
		ev.Kind = EventOther
	}
	ev.Name = boundName(ev.Name)
	if ev.Kind == "" {
		ev.Kind = EventOther
	}
	return ev
}

// decode reads the fields of v from body; false when the body is too large or not JSON of that shape.
func decode(body []byte, v any) bool {
	return len(body) <= maxParse && json.Unmarshal(body, v) == nil
}

// number is a change number when it is one.
func number(n int64) int {
	if n <= 0 || n > math.MaxInt32 {
		return 0
	}
	return int(n)
}

type numbered struct {
	Number int64 `json:"number"`
}

// prs is the pull_requests of a check suite, check run or workflow run.
type prs struct {
	PullRequests []numbered `json:"pull_requests"`
}

// firstPR is the first of a check's or run's pull_requests, the one GitHub names the event after.
func firstPR(prs []numbered) int {
	if len(prs) == 0 {
		return 0
	}
	return number(prs[0].Number)
}

func classifyGitHub(name string, body []byte) Event {
	ev := Event{Name: name, Kind: EventOther}
	switch name {
	case "push", "create":
		ev.Kind = EventPush
	case "pull_request", "pull_request_review", "pull_request_review_thread":
		ev.Kind = EventChange
		var p struct {
			Number      int64    `json:"number"`
			PullRequest numbered `json:"pull_request"`
		}
		if decode(body, &p) {
			ev.Change = number(p.Number)
			if ev.Change == 0 {
				ev.Change = number(p.PullRequest.Number)
			}
		}
	case "pull_request_review_comment":
		ev.Kind = EventComment
		var p struct {
			PullRequest numbered `json:"pull_request"`
		}
		if decode(body, &p) {
			ev.Change = number(p.PullRequest.Number)
		}
	case "issue_comment":
		// A comment on an issue or on a pull request: only the latter carries issue.pull_request.
		var p struct {
			Issue struct {
				Number      int64           `json:"number"`
				PullRequest json.RawMessage `json:"pull_request"`
			} `json:"issue"`
		}
		ev.Kind = EventComment
		if decode(body, &p) {
			if len(p.Issue.PullRequest) == 0 || string(p.Issue.PullRequest) == "null" {
				ev.Kind = EventOther
			} else {
				ev.Change = number(p.Issue.Number)
			}
		}
	case "status":
		ev.Kind = EventStatus
	case "check_suite", "check_run", "workflow_run":
		ev.Kind = EventStatus
		var p struct {
			CheckSuite  prs `json:"check_suite"`
			CheckRun    prs `json:"check_run"`
			WorkflowRun prs `json:"workflow_run"`
		}
		if decode(body, &p) {
			ev.Change = max(firstPR(p.CheckSuite.PullRequests), firstPR(p.CheckRun.PullRequests),
				firstPR(p.WorkflowRun.PullRequests))
		}
	}
	return ev
}

// classifyGitea reads Gitea's and Forgejo's two headers: X-*-Event is the family ("pull_request",
// "issue_comment", "status"), X-*-Event-Type the precise event ("pull_request_sync", "pull_request_label",
// "pull_request_comment", "pull_request_review_approved"…); older servers send only the first, some proxies only
// one of them. Forgejo's win over Gitea's.
func classifyGitea(hdr http.Header, body []byte) Event {
	family := first(hdr.Get("X-Forgejo-Event"), hdr.Get("X-Gitea-Event"))
	typ := first(hdr.Get("X-Forgejo-Event-Type"), hdr.Get("X-Gitea-Event-Type"))
	ev := Event{Name: first(typ, family), Kind: EventOther}
	is := func(names ...string) bool {
		for _, n := range names {
			if family == n || typ == n {
				return true
			}
		}
		return false
	}
	switch {
	case is("push", "create"):
		ev.Kind = EventPush
	case is("issue_comment", "pull_request_comment", "pull_request_review_comment"):
		var p struct {
			IsPull bool `json:"is_pull"`
			Issue  struct {
				Number      int64           `json:"number"`
				PullRequest json.RawMessage `json:"pull_request"`
			} `json:"issue"`
			PullRequest numbered `json:"pull_request"`
		}
		ev.Kind = EventComment
		if decode(body, &p) {
			pull := p.IsPull || (len(p.Issue.PullRequest) > 0 && string(p.Issue.PullRequest) != "null") ||
				p.PullRequest.Number > 0 || typ == "pull_request_comment" || family == "pull_request_comment"
			if !pull {
				ev.Kind = EventOther
			} else if ev.Change = number(p.Issue.Number); ev.Change == 0 {
				ev.Change = number(p.PullRequest.Number)
			}
		}
	case strings.HasPrefix(family, "pull_request") || strings.HasPrefix(typ, "pull_request"):
		ev.Kind = EventChange
		var p struct {
			Number      int64    `json:"number"`
			PullRequest numbered `json:"pull_request"`
		}
		if decode(body, &p) {
			if ev.Change = number(p.Number); ev.Change == 0 {
				ev.Change = number(p.PullRequest.Number)
			}
		}
	case is("status", "workflow_run", "workflow_job"):
		ev.Kind = EventStatus
	}
	return ev
}

func classifyGitLab(name string, body []byte) Event {
	ev := Event{Name: name, Kind: EventOther}
	var p struct {
		ObjectKind       string `json:"object_kind"`
		EventName        string `json:"event_name"`
		ObjectAttributes struct {
			IID          int64  `json:"iid"`
			NoteableType string `json:"noteable_type"`
		} `json:"object_attributes"`
		MergeRequest *struct {
			IID int64 `json:"iid"`
		} `json:"merge_request"`
	}
	switch name {
	case "Push Hook", "Tag Push Hook":
		ev.Kind = EventPush
	case "System Hook":
		if !decode(body, &p) {
			return ev
		}
		switch {
		case p.ObjectKind == "push" || p.ObjectKind == "tag_push" || p.EventName == "push" || p.EventName == "tag_push":
			ev.Kind = EventPush
		case p.ObjectKind == "merge_request" || p.EventName == "merge_request":
			ev.Kind, ev.Change = EventChange, number(p.ObjectAttributes.IID)
		}
	case "Merge Request Hook":
		ev.Kind = EventChange
		if decode(body, &p) {
			ev.Change = number(p.ObjectAttributes.IID)
		}
	case "Note Hook":
		// Notes on commits, issues and snippets are other; only a merge request's note is a comment.
		ev.Kind = EventComment
		if decode(body, &p) {
			if p.ObjectAttributes.NoteableType != "MergeRequest" {
				ev.Kind = EventOther
			} else if p.MergeRequest != nil {
				ev.Change = number(p.MergeRequest.IID)
			}
		}
	case "Pipeline Hook":
		ev.Kind = EventStatus
		if decode(body, &p) && p.MergeRequest != nil {
			ev.Change = number(p.MergeRequest.IID)
		}
	}
	return ev
}

// classifyBitbucket: Cloud's pullrequest:* and Data Center's pr:* events; commit statuses (Cloud).
func classifyBitbucket(name string, body []byte) Event {
	ev := Event{Name: name, Kind: EventOther}
	switch {
	case name == "repo:push" || name == "repo:refs_changed":
		ev.Kind = EventPush
	case strings.HasPrefix(name, "repo:commit_status_"):
		ev.Kind = EventStatus
	case strings.HasPrefix(name, "pullrequest:") || strings.HasPrefix(name, "pr:"):
		ev.Kind = EventChange
		if strings.Contains(name, "comment") {
			ev.Kind = EventComment
		}
		var p struct {
			Cloud struct {
				ID int64 `json:"id"`
			} `json:"pullrequest"`
			DataCenter struct {
				ID int64 `json:"id"`
			} `json:"pullRequest"`
		}
		if decode(body, &p) {
			ev.Change = max(number(p.Cloud.ID), number(p.DataCenter.ID))
		}
	}
	return ev
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// boundName makes an event name valid UTF-8 of at most maxName bytes.
func boundName(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxName {
		return s
	}
	i := maxName
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
