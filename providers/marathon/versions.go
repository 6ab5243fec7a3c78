package marathon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"weak"

	"github.com/berth-dev/berth/providers"
)

// maxCachedVersions bounds the version → spec hash cache of one provider; past it the cache starts afresh.
const maxCachedVersions = 4096

// versionCache remembers the spec hash berth labelled each app version with. Marathon's app versions are
// immutable (GET /v2/apps/{id}/versions/{version} answers the same definition for as long as it keeps the
// version), so an entry never goes stale; it is dropped once no task of its app runs it.
type versionCache struct {
	mu     sync.Mutex
	hashes map[string]map[string]string // app id → version → spec hash ("" for a version Marathon no longer has)
	n      int
}

// caches holds each provider's versionCache, keyed weakly: a provider that is no longer used takes its cache with
// it.
var caches struct {
	mu sync.Mutex
	m  map[weak.Pointer[Provider]]*versionCache
}

// versions is p's versionCache.
func (p *Provider) versions() *versionCache {
	k := weak.Make(p)
	caches.mu.Lock()
	defer caches.mu.Unlock()
	if c := caches.m[k]; c != nil {
		return c
	}
	if caches.m == nil {
		caches.m = map[weak.Pointer[Provider]]*versionCache{}
	}
	c := &versionCache{hashes: map[string]map[string]string{}}
	caches.m[k] = c
	runtime.AddCleanup(p, func(k weak.Pointer[Provider]) {
		caches.mu.Lock()
		defer caches.mu.Unlock()
		delete(caches.m, k)
	}, k)
	return c
}

// get returns the cached hash of app id's version v.
func (c *versionCache) get(id, v string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.hashes[id][v]
	return h, ok
}

// keep replaces what is cached for app id by hashes (the versions its tasks run now).
func (c *versionCache) keep(id string, hashes map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n -= len(c.hashes[id])
	if len(hashes) == 0 {
		delete(c.hashes, id)
		return
	}
	if c.n+len(hashes) > maxCachedVersions {
		c.hashes, c.n = map[string]map[string]string{}, 0
	}
	c.hashes[id] = hashes
	c.n += len(hashes)
}

// olderHashes maps each version a's tasks of an earlier configuration run to the spec hash berth labelled that
// version with: mid-rollout the old tasks still serve, and they are replicas of the old spec, not of none. Each
// version is read once (GET /v2/apps/{id}/versions/{version}) and cached; a version Marathon no longer keeps
// (it prunes old versions) maps to "".
func (p *Provider) olderHashes(ctx context.Context, a *app) (map[string]string, error) {
	vs := olderVersions(a)
	c := p.versions()
	out := make(map[string]string, len(vs))
	for _, v := range vs {
		h, ok := c.get(a.ID, v)
		if !ok {
			var err error
			if h, err = p.versionHash(ctx, a.ID, v); err != nil {
				return nil, err
			}
		}
		out[v] = h
	}
	c.keep(a.ID, out)
	return out, nil
}

// versionHash reads the spec hash label of app id at version v ("" when Marathon no longer has the version).
func (p *Provider) versionHash(ctx context.Context, id, v string) (string, error) {
	var def struct {
		Labels map[string]string `json:"labels"`
	}
	path := appPath(id) + "/versions/" + v // a timestamp: nothing to escape
	err := p.call(ctx, http.MethodGet, path, nil, nil, &def)
	var ae *APIError
	if errors.As(err, &ae) && ae.NotFound() {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("version %s of %s: %w", v, id, err)
	}
	return def.Labels[providers.LabelSpecHash], nil
}
