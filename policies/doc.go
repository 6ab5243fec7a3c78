// Package policies checks the desired state of an environment before anything is applied.
//
// Evaluate runs every rule over one rendered environment and returns findings. A finding of severity Deny stops the
// apply of that environment (nothing that runs is changed); Warn is only reported. Each finding names the rule, the
// workload, the field and the place in the user's files, so the message can be acted on.
//
// Built-in rules:
//
//	image-tag          deny an image with neither a tag nor a digest (or the moving tag "latest")
//	max-replicas       deny replicas above Options.MaxReplicas
//	health-check       warn when a workload has no health check
//	unknown-provider   deny a workload whose provider names no target
//
// Non-goals: repository-defined rules (written in CUE) come later; they will be further Rule values evaluated the
// same way, so callers do not change.
//
// Typical use:
//
//	findings := policies.Evaluate(cfg, "production", policies.Options{})
//	if policies.Denied(findings) { /* report, apply nothing */ }
package policies
