package providers

import (
	"regexp"
	"strconv"

	"github.com/berth-dev/berth/schema"
)

// headPattern is a commit ID as a forge gives it (SHA-1, or SHA-256 for a repository in that object format).
var headPattern = regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`)

// PreviewLabels are the preview labels of an object of owner: LabelPreview (the pull-request number) in a preview
// environment, and LabelHead when pv names a well-formed head commit (nothing else of a pull request goes in a
// label). Other environments get none.
func PreviewLabels(owner Owner, pv *schema.Preview) map[string]string {
	if owner.Preview <= 0 {
		return nil
	}
	l := map[string]string{LabelPreview: strconv.Itoa(owner.Preview)}
	if pv != nil && headPattern.MatchString(pv.Head) {
		l[LabelHead] = pv.Head
	}
	return l
}

// PreviewOf reads the pull-request number of an environment's objects: LabelPreview when it is a canonical
// positive decimal that names this very environment (schema.PreviewName), else 0. A base environment labelled
// as a preview by hand is never taken for one, so nothing collects it as a closed pull request's leftover.
func PreviewOf(env string, labels map[string]string) int {
	v := labels[LabelPreview]
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || strconv.Itoa(n) != v || schema.PreviewName(n) != env {
		return 0
	}
	return n
}

// HeadOf reads LabelHead, "" when absent or not a commit ID.
func HeadOf(labels map[string]string) string {
	if h := labels[LabelHead]; headPattern.MatchString(h) {
		return h
	}
	return ""
}
