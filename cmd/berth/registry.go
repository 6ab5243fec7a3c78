package main

import (
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/berth-dev/berth/reconciler"
)

// Bounds of the registry look-ups that pin images at plan time (each call is bound by registry.DefaultTimeout too).
const (
	registryDialTimeout    = 10 * time.Second
	registryHeaderTimeout  = 20 * time.Second
	registryMaxRedirects   = 5
	registryIdleConnection = 90 * time.Second
)

// registryHTTP is the HTTP client of every registry resolver of the process: one transport, so that connections
// to a registry are reused from pass to pass; proxies from the environment; a registry that accepts a connection
// and never answers cannot hold a pass for long.
var registryHTTP = &http.Client{
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: registryDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   registryDialTimeout,
		ResponseHeaderTimeout: registryHeaderTimeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       registryIdleConnection,
		ForceAttemptHTTP2:     true,
	},
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= registryMaxRedirects {
			return errors.New("too many redirects")
		}
		return nil // Go drops the Authorization header on a redirect to another host (a blob store).
	},
}

// registryResolver is the engine's Options.Registry: the reconciler's registry client for the configuration's
// declared registries (their credentials, plain HTTP for insecure and loopback hosts), over registryHTTP.
func registryResolver(access map[string]reconciler.RegistryAccess) reconciler.ImageResolver {
	c := reconciler.NewRegistryClient(access)
	c.HTTP = registryHTTP
	return c
}
