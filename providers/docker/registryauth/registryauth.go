// Package registryauth turns a registry credential berth was given (providers.RegistryAuth) into the value of a
// Docker engine's X-Registry-Auth header, for the pulls of the docker provider and the services of the swarm
// provider, which both hand credentials to an engine.
//
// Non-goals: docker's config.json and its credential helpers, identity tokens, logging in.
package registryauth

import (
	"fmt"
	"strings"

	dregistry "github.com/docker/docker/api/types/registry"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/registry"
)

// Encode is the X-Registry-Auth value of a for pulling the image ref: base64url JSON of username, password and
// serveraddress; "" (anonymous) for nil. A credential for another registry than ref's is refused, so that it never
// reaches a registry it is not meant for. Errors never show the password.
func Encode(ref string, a *providers.RegistryAuth) (string, error) {
	if a == nil {
		return "", nil
	}
	r, err := registry.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	if !SameRegistry(r.Host, a.Server) {
		return "", fmt.Errorf("image %q is on registry %s, but the credential given is for %s", ref, r.Host, a.Server)
	}
	return dregistry.EncodeAuthConfig(dregistry.AuthConfig{Username: a.Username, Password: string(a.Password),
		ServerAddress: a.Server})
}

// SameRegistry tells whether two registry hosts name one registry: equal ignoring case, a scheme and a path
// ("https://index.docker.io/v1/"), with Docker Hub's names taken as one.
func SameRegistry(a, b string) bool {
	return norm(a) == norm(b)
}

func norm(h string) string {
	h = strings.ToLower(h)
	if _, rest, ok := strings.Cut(h, "://"); ok {
		h = rest
	}
	h, _, _ = strings.Cut(h, "/")
	switch h {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return h
}
