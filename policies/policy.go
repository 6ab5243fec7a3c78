package policies

import "github.com/berth-dev/berth/schema"

// Severity says what a finding does: deny stops the apply of its environment, warn is only reported.
type Severity string

const (
	Deny Severity = "deny"
	Warn Severity = "warn"
)

// Finding is one rule's verdict on one workload (or the environment, when Workload is empty).
type Finding struct {
	Rule        string     `json:"rule"`
	Severity    Severity   `json:"severity"`
	Environment string     `json:"environment"`
	Workload    string     `json:"workload,omitempty"`
	Field       string     `json:"field,omitempty"`
	Pos         schema.Pos `json:"pos"`
	Message     string     `json:"message"`
}

// Denied tells whether any finding denies.
func Denied(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity == Deny {
			return true
		}
	}
	return false
}

// String renders the finding for people: "berth.cue:7:3: deny image-tag: workloads.web.image: ...".
func (f Finding) String() string {
	path := "environments." + f.Environment
	if f.Workload != "" {
		path = "workloads." + f.Workload
		if f.Field != "" {
			path += "." + f.Field
		}
	}
	loc := ""
	if f.Pos.File != "" {
		loc = f.Pos.String() + ": "
	}
	return loc + string(f.Severity) + " " + f.Rule + ": " + path + ": " + f.Message
}
