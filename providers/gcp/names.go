package gcp

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/providers"
)

// Names: a workload's base name is "berth-<instance>-<env>-<workload>" reduced to GCE's name rules (lowercase
// letters, digits and dashes, starting with a letter); past 50 characters it is cut to 41 and suffixed with "-" and
// 8 hex digits of its hash, so base + "-" + a 12-digit spec hash stays within 63 characters (template names) and
// base stays within the 58 of baseInstanceName.
const maxBase = 50

// GroupName is the regional managed instance group of a workload; also the instances' base name.
func GroupName(owner providers.Owner, workload string) string {
	return base(owner, workload)
}

// TemplateName is the instance template of one spec of a workload.
func TemplateName(owner providers.Owner, workload, specHash string) string {
	return base(owner, workload) + "-" + nameSafe(specHash)
}

// groupPrefix is what every group name of owner starts with (before truncation).
func groupPrefix(owner providers.Owner) string {
	return "berth-" + nameSafe(owner.Instance) + "-" + nameSafe(owner.Environment) + "-"
}

func base(owner providers.Owner, workload string) string {
	b := groupPrefix(owner) + nameSafe(workload)
	if len(b) <= maxBase {
		return b
	}
	sum := sha256.Sum256([]byte(owner.Instance + "\x00" + owner.Environment + "\x00" + workload))
	return strings.TrimRight(b[:41], "-") + "-" + hex.EncodeToString(sum[:4])
}

// nameSafe lowercases s and turns every character outside [a-z0-9] into '-'.
func nameSafe(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// LabelKey maps a berth label ("berth.dev/instance") to a GCP label key ("berth-instance"): GCP keys are
// lowercase [a-z0-9_-], at most 63 characters, starting with a letter.
func LabelKey(k string) string {
	return "berth-" + strings.TrimPrefix(k, "berth.dev/")
}

// LabelValue maps a value to GCP's rules (lowercase [a-z0-9_-], at most 63): other characters become '_', and a
// longer value is cut to 54 and suffixed with '-' and 8 hex digits of its hash. Labels are for finding and billing;
// exact ownership is checked against the description marker.
func LabelValue(v string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(v) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if len(out) > 63 {
		sum := sha256.Sum256([]byte(v))
		out = out[:54] + "-" + hex.EncodeToString(sum[:4])
	}
	return out
}

// labels are the ownership labels of a template's instances; a preview's also carry its number and head
// (berth-preview, berth-head: a decimal and 40 hex digits, both within GCP's 63).
func labels(d providers.Desired) map[string]string {
	l := map[string]string{
		LabelKey(providers.LabelInstance):    LabelValue(d.Owner.Instance),
		LabelKey(providers.LabelEnvironment): LabelValue(d.Owner.Environment),
		LabelKey(providers.LabelWorkload):    LabelValue(d.Workload.Name),
		LabelKey(providers.LabelTarget):      LabelValue(d.Target),
		LabelKey(providers.LabelSpecHash):    LabelValue(d.SpecHash),
		"container-vm":                       "cos-stable",
	}
	if d.Owner.Preview != 0 {
		l[LabelKey(providers.LabelPreview)] = strconv.Itoa(d.Owner.Preview)
		if h := headOf(d); h != "" {
			l[LabelKey(providers.LabelHead)] = LabelValue(h)
		}
	}
	return l
}

// headOf is the head commit a preview's objects are labelled with ("" for none).
func headOf(d providers.Desired) string {
	if d.Owner.Preview == 0 || d.Preview == nil {
		return ""
	}
	return d.Preview.Head
}

// markerOf is the ownership description of d's group and templates.
func markerOf(d providers.Desired) marker {
	return marker{Instance: d.Owner.Instance, Env: d.Owner.Environment, Workload: d.Workload.Name, Target: d.Target,
		Spec: d.SpecHash, Preview: d.Owner.Preview, Head: headOf(d)}
}

// marker is the ownership description of groups and templates (groups have no labels):
// "berth: instance=<i>; env=<e>; workload=<w>; target=<t>; spec=<hash>", and for a preview's objects
// "; preview=<n>; head=<sha>" after it (so the descriptions of other environments' objects stay as they were).
// Values are query-escaped.
type marker struct {
	Instance, Env, Workload, Target, Spec string
	// Preview is the pull request of a preview's objects (0 otherwise, and when the field does not parse); Head
	// the head commit the group was last rolled to, or the template made from.
	Preview int
	Head    string
}

const markerPrefix = "berth: "

func (m marker) String() string {
	s := fmt.Sprintf("%sinstance=%s; env=%s; workload=%s; target=%s; spec=%s", markerPrefix,
		esc(m.Instance), esc(m.Env), esc(m.Workload), esc(m.Target), esc(m.Spec))
	if m.Preview != 0 {
		s += "; preview=" + strconv.Itoa(m.Preview)
		if m.Head != "" {
			s += "; head=" + esc(m.Head)
		}
	}
	return s
}

func esc(s string) string {
	return strings.NewReplacer("%", "%25", ";", "%3B", "=", "%3D", " ", "%20").Replace(s)
}

func unesc(s string) string {
	return strings.NewReplacer("%3B", ";", "%3D", "=", "%20", " ", "%25", "%").Replace(s)
}

// parseMarker reads a description written by marker.String; ok is false for anything else.
func parseMarker(desc string) (marker, bool) {
	rest, ok := strings.CutPrefix(desc, markerPrefix)
	if !ok {
		return marker{}, false
	}
	var m marker
	seen := 0
	for _, part := range strings.Split(rest, "; ") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return marker{}, false
		}
		v = unesc(v)
		switch k {
		case "instance":
			m.Instance = v
		case "env":
			m.Env = v
		case "workload":
			m.Workload = v
		case "target":
			m.Target = v
		case "spec":
			m.Spec = v
		case "preview":
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				m.Preview = n
			}
			continue
		case "head":
			m.Head = v
			continue
		default:
			continue
		}
		seen++
	}
	return m, seen == 5 && m.Instance != "" && m.Env != "" && m.Workload != ""
}

// owns tells whether the marker names owner (and, when workload is set, the workload).
func (m marker) owns(owner providers.Owner, target, workload string) bool {
	return m.Instance == owner.Instance && m.Env == owner.Environment && m.Target == target &&
		(workload == "" || m.Workload == workload)
}

// requestID is the requestId of a mutation: a UUID (version 5 layout) derived from what identifies the change,
// so a retry after a crash repeats the same id and the API deduplicates it. state carries what changes after the
// mutation took effect (a group's fingerprint), so a later, legitimate repeat of the same change gets a new id.
func requestID(d providers.Desired, op string, state ...string) string {
	h := sha256.New()
	if d.Owner.Preview != 0 { // a preview's objects carry its number and head: another head is another request
		state = append(state, "preview", strconv.Itoa(d.Owner.Preview), headOf(d))
	}
	for _, s := range append([]string{d.Owner.Instance, d.Owner.Environment, d.Target, d.Workload.Name, d.SpecHash, op}, state...) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	b := h.Sum(nil)[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b)
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}
