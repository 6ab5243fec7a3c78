package edge

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/providers/endpoint"
)

// The admin API's paths.
const (
	// RoutesPath lists the routes (GET, ?instance= to keep one instance's); RoutesPath + "/" + url.PathEscape(name)
	// is one route (GET, PUT, DELETE).
	RoutesPath = "/v1/routes"
	// HealthPath answers 200 once the edge serves its table.
	HealthPath = "/healthz"
	// MaxBodyBytes bounds a request body of the admin API.
	MaxBodyBytes = 1 << 20
)

// Error codes of the admin API's error bodies.
const (
	CodeNotOwned     = "not_owned"      // 409: the name is another owner's
	CodeBadMember    = "bad_member"     // 400: endpoint.CheckMembers, or a member address or watch the edge cannot use
	CodeBadRequest   = "bad_request"    // 400: a malformed body, name or owner
	CodeAddressInUse = "address_in_use" // 409: the listen address is taken by another process
	CodeListen       = "listen"         // 503: the listen address cannot be opened for another reason
	CodeNotFound     = "not_found"      // 404: no route of that name
	CodeState        = "state"          // 500: the table could not be persisted; nothing changed
	CodeClosing      = "closing"        // 503: the edge is stopping
)

// PutRequest is the body of PUT /v1/routes/{name}.
type PutRequest struct {
	Owner endpoint.Owner `json:"owner"`
	// TTL is kept and read back (a Go duration, "60s"); the edge itself has no caches to expire.
	TTL     string            `json:"ttl,omitempty"`
	Members []endpoint.Member `json:"members"`
}

// Route is what GET /v1/routes/{name} and PUT answer, and one entry of the list.
type Route struct {
	Name  string         `json:"name"`
	Owner endpoint.Owner `json:"owner"`
	TTL   string         `json:"ttl,omitempty"`
	// Listening is false while the listen address could not be opened again after a start (it is retried).
	Listening bool `json:"listening"`
	// ListenError says why, then.
	ListenError string         `json:"listenError,omitempty"`
	Members     []MemberStatus `json:"members"`
}

// MemberStatus is a member as it was set (target, addresses, watch, weight) and what the edge makes of it now.
type MemberStatus struct {
	endpoint.Member
	// Resolved are the addresses the edge forwards to: the member's Addresses, or what its watch found last.
	Resolved []AddressStatus `json:"resolved"`
	// Connections open to this member now.
	Connections int `json:"connections"`
	// WatchError is the last failure of the member's watch ("" when it worked); the addresses are then the ones
	// found before.
	WatchError string `json:"watchError,omitempty"`
}

// AddressStatus is one resolved address.
type AddressStatus struct {
	Address string `json:"address"`
	// Ready: the address gets new connections (it did not fail its last two probes, and it is one the controller
	// gave or it passed a probe).
	Ready bool `json:"ready"`
	// Fails is the number of probes it failed in a row.
	Fails int `json:"fails"`
}

// List is the body of GET /v1/routes.
type List struct {
	Routes []Route `json:"routes"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// ParseAdmin reads an admin address: "unix:///path/to.sock", or a loopback TCP address "127.0.0.1:7070",
// "[::1]:7070", "localhost:7070" (optionally with "tcp://"). It returns the network ("unix" or "tcp") and the
// address. The admin API has no authentication: any other TCP address is refused.
func ParseAdmin(s string) (network, address string, err error) {
	switch {
	case s == "":
		return "", "", errors.New("admin address is empty")
	case strings.HasPrefix(s, "unix://"):
		u, err := url.Parse(s)
		if err != nil {
			return "", "", fmt.Errorf("admin address %q: %w", s, err)
		}
		p := u.Path
		if u.Host != "" || !strings.HasPrefix(p, "/") {
			return "", "", fmt.Errorf("admin address %q: want unix:///absolute/path.sock", s)
		}
		return "unix", p, nil
	}
	hp := strings.TrimPrefix(s, "tcp://")
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return "", "", fmt.Errorf("admin address %q: want unix:///path.sock or a loopback host:port: %w", s, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", "", fmt.Errorf("admin address %q: bad port %q", s, port)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", "", fmt.Errorf("admin address %q: the admin API has no authentication; listen on a loopback address (127.0.0.1, ::1) or a unix socket", s)
	}
	return "tcp", hp, nil
}

// checkName tells whether name can be a route's listen address: host:port with a port in 1..65535.
func checkName(name string) error { return checkHostPort("name", name) }

func checkHostPort(what, s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%s %q is not host:port", what, s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%s %q: port %q is not in 1..65535", what, s, port)
	}
	return nil
}

func checkOwner(o endpoint.Owner) error {
	if o.Instance == "" || o.Environment == "" || o.Workload == "" {
		return fmt.Errorf("owner %q: instance, environment and workload are required", o)
	}
	return nil
}

func formatTTL(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func parseTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("ttl %q is not a duration", s)
	}
	return d, nil
}
