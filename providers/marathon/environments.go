package marathon

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/providers"
)

// Environments lists the environments that have apps of instance on target, from the apps' labels alone: one
// GET /v2/apps with the label selector berth.dev/instance==<instance>,berth.dev/target==<target> (no tasks
// embedded). The labels are checked again here, and an app is only counted under the id berth gives its workload
// (labels copied onto another app are not berth's). Each environment comes once, with its berth.dev/preview
// number (0 when absent or malformed) and the berth.dev/head of its most recently changed app.
func (p *Provider) Environments(ctx context.Context, instance, target string) ([]providers.EnvironmentRef, error) {
	var out struct {
		Apps []app `json:"apps"`
	}
	q := url.Values{"label": {selectorTerm(providers.LabelInstance) + "==" + selectorTerm(instance) + "," +
		selectorTerm(providers.LabelTarget) + "==" + selectorTerm(target)}}
	if err := p.call(ctx, http.MethodGet, "/v2/apps", q, nil, &out); err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	type found struct {
		ref     providers.EnvironmentRef
		version string // the version of the app Head was read from (ISO 8601 timestamps order as strings)
	}
	envs := map[string]*found{}
	for i := range out.Apps {
		a := &out.Apps[i]
		l := a.Labels
		env := l[providers.LabelEnvironment]
		if env == "" || l[providers.LabelInstance] != instance || l[providers.LabelTarget] != target {
			continue
		}
		owner := providers.Owner{Instance: instance, Environment: env}
		if id, err := appID(p.set.group, owner, l[providers.LabelWorkload]); err != nil || id != a.ID {
			continue
		}
		f := envs[env]
		if f == nil {
			f = &found{ref: providers.EnvironmentRef{Name: env}}
			envs[env] = f
		}
		if n := previewNumber(l[providers.LabelPreview]); n != 0 {
			f.ref.Preview = n
		}
		if h := l[providers.LabelHead]; h != "" && (f.ref.Head == "" || strings.Compare(a.Version, f.version) > 0) {
			f.ref.Head, f.version = h, a.Version
		}
	}
	refs := make([]providers.EnvironmentRef, 0, len(envs))
	for _, f := range envs {
		refs = append(refs, f.ref)
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].Name < refs[j].Name })
	return refs, nil
}

// previewNumber parses a berth.dev/preview label: a positive decimal, else 0.
func previewNumber(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || strconv.Itoa(n) != s {
		return 0
	}
	return n
}

var _ providers.EnvironmentLister = (*Provider)(nil)
