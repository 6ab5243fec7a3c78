package marathon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/berth-dev/berth/providers"
)

// ErrNotOwned is returned (wrapped, permanent) when an app berth would manage exists without berth's ownership
// labels for that owner and workload: berth neither adopts nor deletes it.
var ErrNotOwned = errors.New("app exists but is not owned by berth")

// Apply converges the workload's app to d: PUT when it is missing or differs (Marathon's own deployment starts
// the new tasks before it kills the old ones), then waits until d.Workload.Replicas tasks of the new version are
// ready and the deployment is done.
//
// A deployment already running for the app rolls it to a definition that is not d (else the app would be up to
// date and Apply would only wait). When that definition is a spec berth wrote and no longer wants (its spec hash
// label is not d's), Apply overrides the deployment with force=true, Marathon's documented way to replace a
// running deployment: such a rollout may never finish (its new tasks never pass their health check, so
// minimumHealthCapacity keeps the old ones and the deployment waits forever), and waiting for it only delays d.
// Marathon cancels it and deploys d from the tasks running now, so the old, healthy tasks keep serving until d's
// are healthy. A deployment of someone else's change to berth's current spec (a hand edit, a scale) is waited for,
// unless the force setting is on: then every PUT carries force=true.
func (p *Provider) Apply(ctx context.Context, d providers.Desired) error {
	id, err := appID(p.set.group, d.Owner, d.Workload.Name)
	if err != nil {
		return err
	}
	want, err := appFor(id, d)
	if err != nil {
		return err
	}
	log := p.log.With("env", d.Owner.Environment, "workload", d.Workload.Name)
	ctx, cancel := context.WithTimeout(ctx, p.ApplyTimeout)
	defer cancel()
	force := p.set.force
	for {
		cur, err := p.getApp(ctx, id)
		if err != nil {
			return fmt.Errorf("apply %s: %w", id, err)
		}
		if cur != nil && !owned(cur, d.Owner, d.Target, d.Workload.Name) {
			return providers.Permanent(fmt.Errorf("apply %s: %w", id, ErrNotOwned))
		}
		if cur != nil && p.upToDate(cur, want, d) {
			break
		}
		body := want
		if cur != nil {
			body = keepUnmanaged(want, cur)
		}
		q := url.Values{"partialUpdate": {"false"}}
		if force {
			q.Set("force", "true")
		}
		var res struct {
			DeploymentID string `json:"deploymentId"`
		}
		err = p.call(ctx, http.MethodPut, appPath(id), q, body, &res)
		var ae *APIError
		if errors.As(err, &ae) && ae.Locked() && !force && cur != nil && cur.Labels[providers.LabelSpecHash] != d.SpecHash {
			// A rollout of a spec berth no longer wants: read the app again (the deployment may have ended
			// meanwhile), then override what still runs.
			log.InfoContext(ctx, "app locked by the rollout of a superseded spec, overriding it", "app", id,
				"deployments", ae.Deployments, "superseded", cur.Labels[providers.LabelSpecHash])
			force = true
			continue
		}
		if errors.As(err, &ae) && ae.Locked() {
			log.InfoContext(ctx, "app locked by a deployment, waiting", "app", id, "deployments", ae.Deployments)
			if err := p.waitDeployments(ctx, ae.Deployments); err != nil {
				return fmt.Errorf("apply %s: %w", id, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("apply %s: %w", id, err)
		}
		log.InfoContext(ctx, "app updated", "app", id, "hash", d.SpecHash, "replicas", d.Workload.Replicas, "deployment", res.DeploymentID)
		break
	}
	return p.waitReady(ctx, id, d.SpecHash)
}

// waitReady polls the app until it is converged on hash.
func (p *Provider) waitReady(ctx context.Context, id, hash string) error {
	why := "not read yet"
	for {
		a, err := p.getApp(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("apply %s: %w", id, err)
		}
		switch {
		case a == nil:
			why = "the app disappeared"
		case a.Labels[providers.LabelSpecHash] != hash:
			why = "the app carries spec hash " + a.Labels[providers.LabelSpecHash] + ", not " + hash
		default:
			if why = readyWhy(a); why == "" {
				return nil
			}
		}
		if providers.Sleep(ctx, p.PollInterval) != nil {
			break
		}
	}
	return fmt.Errorf("apply %s: not ready: %s: %w", id, why, ctx.Err())
}

// Delete removes the workload's app when owner owns it, then waits for the stop deployment. A deployment locking
// the app (a rollout that may never finish) is overridden with force=true: whatever it deploys is about to be
// stopped. An app with that id that is not owner's is a permanent ErrNotOwned; a missing one is not an error.
func (p *Provider) Delete(ctx context.Context, owner providers.Owner, target, workload string) error {
	id, err := appID(p.set.group, owner, workload)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.ApplyTimeout)
	defer cancel()
	force := p.set.force
	for {
		cur, err := p.getApp(ctx, id)
		if err != nil {
			return fmt.Errorf("delete %s: %w", id, err)
		}
		if cur == nil {
			return nil
		}
		if !owned(cur, owner, target, workload) {
			return providers.Permanent(fmt.Errorf("delete %s: %w", id, ErrNotOwned))
		}
		q := url.Values{}
		if force {
			q.Set("force", "true")
		}
		var res struct {
			DeploymentID string `json:"deploymentId"`
		}
		err = p.call(ctx, http.MethodDelete, appPath(id), q, nil, &res)
		var ae *APIError
		switch {
		case errors.As(err, &ae) && ae.NotFound():
			return nil
		case errors.As(err, &ae) && ae.Locked() && !force:
			p.log.InfoContext(ctx, "app locked by a deployment, overriding it to delete the app", "env", owner.Environment,
				"workload", workload, "app", id, "deployments", ae.Deployments)
			force = true
			continue
		case errors.As(err, &ae) && ae.Locked():
			if err := p.waitDeployments(ctx, ae.Deployments); err != nil {
				return fmt.Errorf("delete %s: %w", id, err)
			}
			continue
		case err != nil:
			return fmt.Errorf("delete %s: %w", id, err)
		}
		p.log.InfoContext(ctx, "app deleted", "env", owner.Environment, "workload", workload, "app", id, "deployment", res.DeploymentID)
		if res.DeploymentID == "" {
			return nil
		}
		if err := p.waitDeployments(ctx, []string{res.DeploymentID}); err != nil {
			return fmt.Errorf("delete %s: %w", id, err)
		}
		return nil
	}
}

// List finds owner's apps on this target by the instance label (Marathon's label selector), then keeps those of
// owner's environment and this target.
func (p *Provider) List(ctx context.Context, owner providers.Owner, target string) ([]providers.Observed, error) {
	var out struct {
		Apps []app `json:"apps"`
	}
	q := url.Values{"label": {selectorTerm(providers.LabelInstance) + "==" + selectorTerm(owner.Instance)}, "embed": {"apps.tasks"}}
	if err := p.call(ctx, http.MethodGet, "/v2/apps", q, nil, &out); err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	var obs []providers.Observed
	for i := range out.Apps {
		a := &out.Apps[i]
		l := a.Labels
		if l[providers.LabelInstance] != owner.Instance || l[providers.LabelEnvironment] != owner.Environment ||
			l[providers.LabelTarget] != target || l[providers.LabelWorkload] == "" {
			continue
		}
		if id, err := appID(p.set.group, owner, l[providers.LabelWorkload]); err != nil || id != a.ID {
			continue // labels copied onto another app: not the one berth manages
		}
		older, err := p.olderHashes(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("list apps: %w", err)
		}
		obs = append(obs, observe(a, target, older))
	}
	sort.Slice(obs, func(i, j int) bool { return obs[i].Workload < obs[j].Workload })
	return obs, nil
}

// selectorTerm escapes s for Marathon's label selector: characters outside [-A-Za-z0-9_.] get a backslash.
func selectorTerm(s string) string {
	var b strings.Builder
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
