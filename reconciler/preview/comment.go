package preview

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/berth-dev/berth/repos/forge"
	"github.com/berth-dev/berth/schema/redact"
)

// statusContext is the commit status context of an environment: "berth/<instance>/<environment>".
func (c *Controller) statusContext(env string) string {
	return "berth/" + c.opts.Instance + "/" + env
}

// publish brings pull request n's comment and commit status in line with its state. Nothing is sent when nothing
// changed; a failure is logged and retried on the next pass (the posted body is only remembered once sent).
func (c *Controller) publish(ctx context.Context, n int) {
	c.mu.Lock()
	r, ok := c.prs[n]
	if !ok {
		c.mu.Unlock()
		return
	}
	st := r.status
	c.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	limits := c.opts.Forge.Limits()
	marker := forge.Marker(c.opts.Instance, CommentKey)
	body := RenderComment(marker, st, limits.CommentBytes)
	key := fmt.Sprintf("%d/%s", n, CommentKey)
	c.mu.Lock()
	same := c.posted[key] == body
	c.mu.Unlock()
	if !same {
		if _, err := c.opts.Forge.UpsertComment(ctx, n, marker, body); err != nil {
			c.log.Warn("previews: comment", "preview", n, "err", err)
		} else {
			c.mu.Lock()
			c.posted[key] = body
			c.mu.Unlock()
		}
	}
	if st.Head == "" {
		return
	}
	s := forge.Status{SHA: st.Head, Context: c.statusContext(st.Environment), Description: statusLine(st)}
	switch st.State {
	case StateReady:
		s.State = forge.StatusSuccess
		if len(st.URLs) > 0 {
			s.TargetURL = st.URLs[0]
		}
	case StateFailed:
		s.State = forge.StatusFailure
	case StateGone:
		s.State = forge.StatusSuccess
	default:
		s.State = forge.StatusPending
	}
	skey := fmt.Sprintf("%d/status", n)
	sig := fmt.Sprintf("%s\x00%s\x00%s\x00%s", s.SHA, s.State, s.Description, s.TargetURL)
	c.mu.Lock()
	same = c.posted[skey] == sig
	c.mu.Unlock()
	if same {
		return
	}
	if err := c.opts.Forge.SetStatus(ctx, s); err != nil {
		c.log.Warn("previews: status", "preview", n, "err", err)
		return
	}
	c.mu.Lock()
	c.posted[skey] = sig
	c.mu.Unlock()
}

// statusLine is the one-line description of a state (a commit status's description).
func statusLine(st Status) string {
	var s string
	switch st.State {
	case StateReady:
		s = "preview " + st.Environment + " is ready"
	case StateApplying:
		s = "deploying preview " + st.Environment
	case StateFailed:
		s = "preview " + st.Environment + " failed: " + st.Reason
	case StateGone:
		s = "preview " + st.Environment + " " + st.Reason
	default:
		s = st.State + ": " + st.Reason
	}
	return cut(redact.String(s), 140)
}

// cut shortens s to at most n bytes on a rune boundary, with an ellipsis.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - len("…")
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

var stateWords = map[string]string{
	StateDiscovered:       "🔎 discovered",
	StateAwaitingApproval: "✋ awaiting approval",
	StateGated:            "⏳ gated",
	StateQueued:           "⏳ queued",
	StateApplying:         "🚧 deploying",
	StateReady:            "✅ ready",
	StateFailed:           "❌ failed",
	StateExpiring:         "⌛ expiring",
	StateDestroying:       "🧹 being removed",
	StateGone:             "🗑️ destroyed",
}

// codeText makes text safe inside a fenced code block of a comment: masked by redaction, no backtick fences, no
// control characters, each line cut.
func codeText(s string) string {
	s = redact.String(s)
	s = strings.ReplaceAll(s, "```", "'''")
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line = strings.Map(func(r rune) rune {
			if r < 0x20 && r != '\t' || r == 0x7f {
				return '?'
			}
			return r
		}, line)
		b.WriteString(cut(line, 400))
		b.WriteByte('\n')
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// RenderComment is the body of a preview's comment: the marker, a summary that always fits, then details cut to
// limit bytes with a note. Untrusted text (branch names, titles) is never part of it; error messages from the head's
// evaluation are shown only inside code blocks.
func RenderComment(marker string, st Status, limit int) string {
	var sum strings.Builder
	sum.WriteString(marker + "\n")
	fmt.Fprintf(&sum, "### berth preview `%s`: %s\n\n", st.Environment, stateWords[st.State])
	if st.Head != "" {
		fmt.Fprintf(&sum, "Commit `%s`", short(st.Head))
		if st.Base != "" {
			fmt.Fprintf(&sum, " · copy of environment `%s`", st.Base)
		}
		sum.WriteString("\n\n")
	}
	if st.Reason != "" {
		sum.WriteString(codeInline(st.Reason) + "\n\n")
	}
	if len(st.Workloads) > 0 && st.State != StateGone {
		sum.WriteString("| workload | target | ready | URL |\n|---|---|---|---|\n")
		for _, w := range st.Workloads {
			u := "—"
			if len(w.URLs) > 0 && st.State == StateReady {
				u = strings.Join(w.URLs, "<br>")
			}
			fmt.Fprintf(&sum, "| `%s` | `%s` | %d/%d | %s |\n", w.Name, w.Target, w.Ready, w.Desired, u)
		}
		sum.WriteString("\n")
	}
	var det strings.Builder
	if len(st.Errors) > 0 {
		det.WriteString("**Errors**\n\n```\n")
		for _, e := range st.Errors {
			line := e.Message
			if e.Path != "" {
				line = e.Path + ": " + line
			}
			if e.File != "" {
				line = fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, line)
			}
			det.WriteString(codeText(line) + "\n")
		}
		det.WriteString("```\n\n")
	}
	if st.Plan != "" && st.State != StateGone {
		fmt.Fprintf(&det, "<details><summary>Plan: %s</summary>\n\n```\n", st.Plan)
		for _, s := range st.Steps {
			det.WriteString(codeText(s) + "\n")
		}
		det.WriteString("```\n</details>\n")
	}
	return fit(sum.String(), det.String(),
		"\n_The details are cut to fit the forge's comment size; `berth previews` shows all of them._\n", limit)
}

// fit is summary and details within limit bytes (0: no limit): the summary always, the details cut with note, a
// code block left open by the cut closed.
func fit(summary, details, note string, limit int) string {
	if limit <= 0 || len(summary)+len(details) <= limit {
		return summary + details
	}
	room := limit - len(summary) - len(note) - len("\n```")
	if room <= 0 {
		return cut(summary, limit)
	}
	d := cut(details, room)
	if strings.Count(d, "```")%2 == 1 {
		d += "\n```"
	}
	return summary + d + note
}

// codeInline shows a short text in an inline code span without letting it out.
func codeInline(s string) string {
	s = strings.NewReplacer("`", "'", "\n", " ", "\r", " ").Replace(redact.String(s))
	return "`" + cut(s, 300) + "`"
}
