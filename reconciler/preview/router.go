package preview

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Router is berth's preview router: one HTTP listener that serves each preview's public ports by host name
// ("pr-42-x1y2.localhost:8480" → the address the runtime gives the port), for targets that do not route by host
// themselves (Docker, Swarm, Nomad, Marathon, the clouds' plain addresses). "*.localhost" resolves to the loopback
// address in browsers and curl, so it works without DNS set-up. An unknown host answers 404; nothing else leaves it.
type Router struct {
	mu     sync.RWMutex
	routes map[string]string // host → "host:port"
	by     map[int][]string  // preview → its hosts
	proxy  *httputil.ReverseProxy
}

// NewRouter returns a router with no routes.
func NewRouter() *Router {
	r := &Router{routes: map[string]string{}, by: map[int][]string{}}
	r.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			addr, _ := pr.In.Context().Value(backendKey{}).(string)
			pr.SetURL(&url.URL{Scheme: "http", Host: addr})
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: &http.Transport{DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			ResponseHeaderTimeout: time.Minute, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			http.Error(w, "berth: the preview does not answer", http.StatusBadGateway)
		},
	}
	return r
}

type backendKey struct{}

// Set replaces preview n's routes (host → address); nil removes them.
func (r *Router) Set(n int, routes map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range r.by[n] {
		delete(r.routes, h)
	}
	delete(r.by, n)
	for h, a := range routes {
		h = strings.ToLower(h)
		r.routes[h] = a
		r.by[n] = append(r.by[n], h)
	}
}

// Lookup returns the address host is routed to.
func (r *Router) Lookup(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	a, ok := r.routes[strings.ToLower(strings.TrimSuffix(host, "."))]
	return a, ok
}

// ServeHTTP proxies the request to the preview its Host names.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	addr, ok := r.Lookup(req.Host)
	if !ok {
		http.Error(w, "berth: no preview at this host name", http.StatusNotFound)
		return
	}
	ctx := req.Context()
	r.proxy.ServeHTTP(w, req.WithContext(contextWith(ctx, addr)))
}
