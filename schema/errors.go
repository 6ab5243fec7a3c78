package schema

import (
	"fmt"
	"strings"
)

// Error is one problem in the user's files: where it is, which field, what is wrong.
type Error struct {
	Pos Pos `json:"pos"`
	// Path is the CUE field path, e.g. "workloads.web.replicas".
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Pos.File != "" {
		fmt.Fprintf(&b, "%s: ", e.Pos)
	}
	if e.Path != "" {
		fmt.Fprintf(&b, "%s: ", e.Path)
	}
	b.WriteString(e.Message)
	return b.String()
}

// Errors is every problem found in one load, sorted by file, line, column.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}
