package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/berth-dev/berth/schema"
)

// Health check defaults, used when the spec leaves a field at zero.
const (
	DefaultHealthInterval = 2 * time.Second
	DefaultHealthTimeout  = 2 * time.Second
	DefaultHealthRetries  = 3
	// ReadyMargin is added to the time a health check may take to pass before Apply gives up on a replica.
	ReadyMargin = 20 * time.Second
	// tcpSettle is how long a TCP probe waits for the published port to drop a connection that no process behind
	// it accepted (the engine's port forwarder accepts first and closes when the container refuses).
	tcpSettle = 300 * time.Millisecond
)

// health is a health check with its defaults applied.
type health struct {
	spec        *schema.HealthCheck
	interval    time.Duration
	timeout     time.Duration
	retries     int
	startPeriod time.Duration
}

func healthOf(h *schema.HealthCheck) health {
	out := health{spec: h, interval: DefaultHealthInterval, timeout: DefaultHealthTimeout, retries: DefaultHealthRetries}
	if h == nil {
		return out
	}
	if h.Interval > 0 {
		out.interval = h.Interval.D()
	}
	if h.Timeout > 0 {
		out.timeout = h.Timeout.D()
	}
	if h.Retries > 0 {
		out.retries = h.Retries
	}
	out.startPeriod = h.StartPeriod.D()
	return out
}

// readyTimeout bounds how long Apply waits for a new replica to become ready.
func (h health) readyTimeout() time.Duration {
	if h.spec == nil {
		return ReadyMargin
	}
	return h.startPeriod + time.Duration(h.retries+1)*(h.interval+h.timeout) + ReadyMargin
}

// engineHealthcheck is the Docker Healthcheck for command checks (exec form: scratch images have no shell).
func (h health) engineHealthcheck() *container.HealthConfig {
	if h.spec.Kind() != "command" {
		return nil
	}
	return &container.HealthConfig{
		Test:        append([]string{"CMD"}, h.spec.Command...),
		Interval:    h.interval,
		Timeout:     h.timeout,
		Retries:     h.retries,
		StartPeriod: h.startPeriod,
	}
}

// publishedPort returns the 127.0.0.1 host port the engine published for a container TCP port.
func publishedPort(ci container.InspectResponse, port int) (int, bool) {
	if ci.NetworkSettings == nil {
		return 0, false
	}
	for _, b := range ci.NetworkSettings.Ports[nat.Port(strconv.Itoa(port)+"/tcp")] {
		if b.HostIP != "127.0.0.1" {
			continue
		}
		if hp, err := strconv.Atoi(b.HostPort); err == nil && hp > 0 {
			return hp, true
		}
	}
	return 0, false
}

// probe runs one check of a running container: "healthy", "unhealthy" or "starting" (command checks whose first
// run is pending), or "" when the workload has no health check. Command checks read the engine's status; HTTP and
// TCP checks are made from the host against the container's 127.0.0.1 published port.
func (h health) probe(ctx context.Context, ci container.InspectResponse) string {
	switch h.spec.Kind() {
	case "":
		return ""
	case "command":
		if ci.State == nil || ci.State.Health == nil {
			return "starting"
		}
		switch ci.State.Health.Status {
		case container.Healthy:
			return "healthy"
		case container.Unhealthy:
			return "unhealthy"
		default:
			return "starting"
		}
	}
	var err error
	if h.spec.HTTP != nil {
		err = h.probeHTTP(ctx, ci)
	} else {
		err = h.probeTCP(ctx, ci)
	}
	if err != nil {
		return "unhealthy"
	}
	return "healthy"
}

func (h health) probeHTTP(ctx context.Context, ci container.InspectResponse) error {
	hp, ok := publishedPort(ci, h.spec.HTTP.Port)
	if !ok {
		return fmt.Errorf("port %d/tcp not published", h.spec.HTTP.Port)
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	url := "http://127.0.0.1:" + strconv.Itoa(hp) + h.spec.HTTP.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Close = true
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s: %s", h.spec.HTTP.Path, resp.Status)
	}
	return nil
}

// probeClient never follows redirects (a 3xx passes) and keeps no connections.
var probeClient = &http.Client{
	Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// probeTCP passes when a connection opens and is not dropped at once: the engine's port forwarder accepts every
// connection and closes it when nothing listens in the container.
func (h health) probeTCP(ctx context.Context, ci container.InspectResponse) error {
	hp, ok := publishedPort(ci, h.spec.TCP.Port)
	if !ok {
		return fmt.Errorf("port %d/tcp not published", h.spec.TCP.Port)
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(hp))
	if err != nil {
		return err
	}
	defer c.Close()
	settle := min(tcpSettle, h.timeout)
	c.SetReadDeadline(time.Now().Add(settle))
	var b [1]byte
	_, err = c.Read(b[:])
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		return nil // the server spoke first, or kept the connection open: something listens
	}
	return fmt.Errorf("connection dropped: %w", err)
}
