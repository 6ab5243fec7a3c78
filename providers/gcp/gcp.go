package gcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Type is the target type served.
const Type = "gcp"

func init() {
	providers.Register(Type, New)
	providers.RegisterOffline(Type, Offline)
}

// Offline implements providers.Offline: what a gcp target honours, from its settings alone (no credentials, no
// metadata server, no environment). The provider built for the target reports the same.
func Offline(t schema.Target) (providers.Capabilities, providers.Validator, error) {
	s, err := ParseSettings(t)
	if err != nil {
		return providers.Capabilities{}, nil, err
	}
	return capabilities(s), validator{s}, nil
}

// Provider runs workloads on Compute Engine: an instance template per spec and a regional managed instance group
// per workload. The tuning fields may be changed before the first call only.
type Provider struct {
	// PollInterval paces the polling of operations and of a group's convergence (default 2 s).
	PollInterval time.Duration
	// RetryBase and RetryMax bound the exponential backoff of retryable API errors (default 1 s, 30 s);
	// RetryAttempts bounds the attempts of one API call (default 8).
	RetryBase, RetryMax time.Duration
	RetryAttempts       int
	// RolloutTimeout bounds the wait for a group to converge when ctx has no earlier deadline (default 20 min).
	RolloutTimeout time.Duration

	target      string
	project     string
	region      string
	network     func() string
	subnetwork  func() string
	machineType string
	log         *slog.Logger
	settings    Settings
	// who names the identity the credentials are of ("" when unknown), for errors.
	who string

	templates    *compute.InstanceTemplatesClient
	groups       *compute.RegionInstanceGroupManagersClient
	regionGroups *compute.RegionInstanceGroupsClient
	regions      *compute.RegionsClient
	instances    *compute.InstancesClient
	regionOps    *compute.RegionOperationsClient
	globalOps    *compute.GlobalOperationsClient
	// secrets reads gcp secret references (Secret Manager, REST), with the provider's own credentials.
	secrets *secretmanager.Client
	// the load balancer's side: health checks, firewall rules, addresses, backend services, forwarding rules
	healthChecks *compute.HealthChecksClient
	firewallsC   *compute.FirewallsClient
	addressesC   *compute.AddressesClient
	backends     *compute.RegionBackendServicesClient
	rules        *compute.ForwardingRulesClient
	// raw is an authenticated HTTP client on the Compute API (rawEndpoint), for the one call the SDK cannot make
	// (clearAutohealing).
	raw         *http.Client
	rawEndpoint string

	mu sync.Mutex
	// zones are the zones new groups spread over: the target's zones setting, else the region's zones as the
	// Regions API lists them (read once).
	zones []string
	// seen caches templates by selfLink across List passes: a template is immutable, so one read is enough for a
	// template berth does not find by its own name prefix (one made by hand).
	seen map[string]*computepb.InstanceTemplate
}

// Settings are a gcp target's settings, checked.
type Settings struct {
	Project, Region, Network, Subnetwork, MachineType, CredentialsFile, Endpoint string
	// SecretManagerEndpoint overrides Secret Manager's endpoint (tests: an emulator); default the SDK's.
	SecretManagerEndpoint string
	// Zones are the zones of the region new groups spread over (distributionPolicy.zones); empty: the region's zones
	// as the Regions API lists them.
	Zones []string
}

// ParseSettings reads and checks a target's settings.
func ParseSettings(t schema.Target) (Settings, error) {
	var s Settings
	str := func(key string, dst *string, required bool) error {
		v, ok := t.Settings[key]
		if !ok {
			if required {
				return fmt.Errorf("target %q (%s): setting %q is required", t.Name, t.Pos, key)
			}
			return nil
		}
		sv, ok := v.(string)
		if !ok || strings.TrimSpace(sv) == "" {
			return fmt.Errorf("target %q (%s): setting %q must be a non-empty string", t.Name, t.Pos, key)
		}
		*dst = sv
		return nil
	}
	for _, f := range []struct {
		key string
		dst *string
		req bool
	}{
		{"project", &s.Project, true}, {"region", &s.Region, true}, {"network", &s.Network, false},
		{"subnetwork", &s.Subnetwork, false}, {"machineType", &s.MachineType, false},
		{"credentialsFile", &s.CredentialsFile, false}, {"endpoint", &s.Endpoint, false},
		{"secretManagerEndpoint", &s.SecretManagerEndpoint, false},
	} {
		if err := str(f.key, f.dst, f.req); err != nil {
			return Settings{}, err
		}
	}
	if v, ok := t.Settings["zones"]; ok {
		var zs []string
		switch v := v.(type) {
		case []string:
			zs = v
		case []any:
			for _, z := range v {
				if z, ok := z.(string); ok {
					zs = append(zs, z)
				} else {
					zs = append(zs, "")
				}
			}
		default:
			return Settings{}, fmt.Errorf("target %q (%s): setting \"zones\" must be a list of zone names", t.Name, t.Pos)
		}
		for _, z := range zs {
			if !strings.HasPrefix(z, s.Region+"-") || len(z) == len(s.Region)+1 {
				return Settings{}, fmt.Errorf("target %q (%s): setting \"zones\": %q is not a zone of region %s", t.Name, t.Pos, z, s.Region)
			}
		}
		s.Zones = zs
	}
	return s, nil
}

// New builds the provider for a gcp target: application default credentials, or the credentialsFile (a service
// account key, authorized user or external account JSON); endpoint overrides the API endpoint.
//
// Without a credentialsFile, application default credentials are looked for as the SDK does
// (GOOGLE_APPLICATION_CREDENTIALS, gcloud's file, the metadata server); when there are none, New fails at once
// with the sources tried and the fix.
func New(t schema.Target, opts providers.Options) (providers.Provider, error) {
	s, err := ParseSettings(t)
	if err != nil {
		return nil, err
	}
	if s.CredentialsFile != "" {
		return NewWithClientOptions(t, opts)
	}
	creds, who, err := defaultCredentials(t.Name)
	if err != nil {
		return nil, err
	}
	p, err := NewWithClientOptions(t, opts, option.WithAuthCredentials(creds))
	if err != nil {
		return nil, err
	}
	p.who = who
	return p, nil
}

// NewWithClientOptions is New with extra SDK client options (tests: an endpoint, option.WithoutAuthentication).
// Without a credentialsFile, authentication is left to extra, or else to the SDK's own default.
func NewWithClientOptions(t schema.Target, opts providers.Options, extra ...option.ClientOption) (*Provider, error) {
	s, err := ParseSettings(t)
	if err != nil {
		return nil, err
	}
	var copts []option.ClientOption
	if s.Endpoint != "" {
		copts = append(copts, option.WithEndpoint(s.Endpoint))
	}
	var who string
	var smopts []option.ClientOption
	if s.CredentialsFile != "" {
		typ, err := credentialsType(s.CredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("gcp target %q: settings.credentialsFile: %w. To fix: point it at a readable service "+
				"account key, authorized user or workload identity federation JSON file", t.Name, err)
		}
		copts = append(copts, option.WithAuthCredentialsFile(typ, s.CredentialsFile))
		smopts = append(smopts, option.WithAuthCredentialsFile(typ, s.CredentialsFile))
		who = identity(s.CredentialsFile, "settings.credentialsFile")
	}
	copts = append(copts, extra...)
	smopts = append(smopts, extra...)
	if s.SecretManagerEndpoint != "" {
		smopts = append(smopts, option.WithEndpoint(s.SecretManagerEndpoint))
	}
	ctx := context.Background() // client construction does no I/O
	p := &Provider{
		PollInterval: 2 * time.Second, RetryBase: time.Second, RetryMax: 30 * time.Second, RetryAttempts: 8,
		RolloutTimeout: 20 * time.Minute,
		target:         t.Name, project: s.Project, region: s.Region, machineType: s.MachineType, settings: s,
		log: opts.Logger, zones: s.Zones, seen: map[string]*computepb.InstanceTemplate{}, who: who,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("provider", Type, "target", t.Name)
	network, subnetwork := s.Network, s.Subnetwork
	p.network = func() string {
		switch {
		case network == "":
			return "global/networks/default"
		case strings.Contains(network, "/"):
			return network
		}
		return "global/networks/" + network
	}
	p.subnetwork = func() string {
		if subnetwork == "" || strings.Contains(subnetwork, "/") {
			return subnetwork
		}
		return "regions/" + s.Region + "/subnetworks/" + subnetwork
	}
	if p.templates, err = compute.NewInstanceTemplatesRESTClient(ctx, copts...); err == nil {
		if p.groups, err = compute.NewRegionInstanceGroupManagersRESTClient(ctx, copts...); err == nil {
			if p.regionOps, err = compute.NewRegionOperationsRESTClient(ctx, copts...); err == nil {
				if p.globalOps, err = compute.NewGlobalOperationsRESTClient(ctx, copts...); err == nil {
					if p.regionGroups, err = compute.NewRegionInstanceGroupsRESTClient(ctx, copts...); err == nil {
						if p.regions, err = compute.NewRegionsRESTClient(ctx, copts...); err == nil {
							if p.instances, err = compute.NewInstancesRESTClient(ctx, copts...); err == nil {
								p.secrets, err = secretmanager.NewRESTClient(ctx, smopts...)
							}
						}
					}
				}
			}
		}
	}
	if err == nil {
		if p.healthChecks, err = compute.NewHealthChecksRESTClient(ctx, copts...); err == nil {
			if p.firewallsC, err = compute.NewFirewallsRESTClient(ctx, copts...); err == nil {
				if p.addressesC, err = compute.NewAddressesRESTClient(ctx, copts...); err == nil {
					if p.backends, err = compute.NewRegionBackendServicesRESTClient(ctx, copts...); err == nil {
						if p.rules, err = compute.NewForwardingRulesRESTClient(ctx, copts...); err == nil {
							p.raw, p.rawEndpoint, err = htransport.NewClient(ctx, append([]option.ClientOption{
								option.WithScopes(compute.DefaultAuthScopes()...)}, copts...)...)
							if p.rawEndpoint == "" || s.Endpoint != "" {
								p.rawEndpoint = s.Endpoint
							}
							if p.rawEndpoint == "" {
								p.rawEndpoint = "https://compute.googleapis.com"
							}
						}
					}
				}
			}
		}
	}
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("target %q: compute clients: %w", t.Name, err)
	}
	return p, nil
}

func credentialsType(path string) (option.CredentialsType, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var f struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return "", fmt.Errorf("%s: not a JSON credentials file: %w", path, err)
	}
	switch t := option.CredentialsType(f.Type); t {
	case option.ServiceAccount, option.AuthorizedUser, option.ExternalAccount, option.ImpersonatedServiceAccount:
		return t, nil
	}
	return "", fmt.Errorf("%s: unsupported credentials type %q", path, f.Type)
}

// Type implements providers.Provider.
func (p *Provider) Type() string { return Type }

// Capabilities implements providers.Provider (see capabilities).
func (p *Provider) Capabilities() providers.Capabilities { return capabilities(p.settings) }

// capabilities: HTTP and TCP health checks (Compute Engine health checks, for autohealing and the load balancer),
// public ports behind a regional external passthrough Network Load Balancer at a reserved address, CPU and memory
// as the machine type. Secrets from SOPS files and Secret Manager, as environment values of the container
// declaration; no secret files (the declaration has no way to write one).
func capabilities(s Settings) providers.Capabilities {
	rule := machineRule(s.MachineType)
	return providers.Capabilities{HealthHTTP: true, HealthTCP: true, PublicPorts: true, UDP: true, CPULimit: true, MemoryLimit: true,
		MaxReplicas: maxReplicas, SecretKinds: []string{schema.SecretSOPS, schema.SecretGCP}, SecretFiles: false,
		How: map[string]string{
			providers.FeaturePublicPort: "regional external passthrough Network Load Balancer: a forwarding rule per protocol to a regional " +
				"backend service of the group, a firewall rule from 0.0.0.0/0 for the public ports",
			providers.FeatureAddress: "a reserved regional external IP address, the forwarding rules' (kept while the workload exists)",
			providers.FeatureHealthHTTP: "Compute Engine HTTP health check: the group's autohealing policy (initial delay = startPeriod) and " +
				"the backend service; ready = the instance's health state HEALTHY",
			providers.FeatureHealthTCP: "Compute Engine TCP health check: the group's autohealing policy (initial delay = startPeriod) and " +
				"the backend service; ready = the instance's health state HEALTHY",
			providers.FeatureCPU:    rule,
			providers.FeatureMemory: rule,
			providers.FeatureArgs:   "Container-Optimized OS container declaration: command replaces the entrypoint, args the image's cmd",
			providers.FeatureRollout: "managed instance group proactive update, maxSurge = its zone count, maxUnavailable 0: new instances " +
				"are RUNNING (and HEALTHY, with a health check) before old ones go",
		}}
}

// maxReplicas is the most instances a regional managed instance group holds.
const maxReplicas = 1000

// Health check bounds of Compute Engine (checkIntervalSec, timeoutSec, unhealthyThreshold, the autohealing
// policy's initialDelaySec).
const (
	maxIntervalSec     = 300
	maxUnhealthy       = 10
	maxInitialDelaySec = 3600
)

// Validate implements providers.Validator (see validate).
func (p *Provider) Validate(w schema.Workload) []providers.Problem {
	return validator{p.settings}.Validate(w)
}

// validator checks workloads against a target's settings: the provider's Validate and Offline's share it.
type validator struct{ s Settings }

// Validate: what Compute Engine with Container-Optimized OS cannot honour, by field.
func (v validator) Validate(w schema.Workload) []providers.Problem {
	var out []providers.Problem
	add := func(field, msg string) { out = append(out, providers.Problem{Field: field, Message: msg}) }
	if h := w.Health; h != nil {
		switch h.Kind() {
		case "command":
			add("health.command", "gcp: Compute Engine health checks are probes sent to the instance over the network (HTTP, TCP); "+
				"Container-Optimized OS runs no command inside the container for them. Use health.http or health.tcp on a port the container serves")
		}
		if sec := time.Duration(h.Interval).Seconds(); time.Duration(h.Interval) > 0 && (sec < 1 || sec > maxIntervalSec) {
			add("health.interval", fmt.Sprintf("gcp: a health check's interval (checkIntervalSec) is 1 to %d s", maxIntervalSec))
		}
		if time.Duration(h.Timeout) > 0 && time.Duration(h.Interval) > 0 && time.Duration(h.Timeout) > time.Duration(h.Interval) {
			add("health.timeout", "gcp: a health check's timeout may not exceed its interval")
		}
		if h.Retries > maxUnhealthy {
			add("health.retries", fmt.Sprintf("gcp: a health check's unhealthy threshold (retries) is at most %d", maxUnhealthy))
		}
		if time.Duration(h.StartPeriod) > maxInitialDelaySec*time.Second {
			add("health.startPeriod", fmt.Sprintf("gcp: the autohealing policy's initial delay (startPeriod) is at most %d s", maxInitialDelaySec))
		}
	}
	tcpPublic := false
	for _, pt := range w.Ports {
		if pt.Public && !strings.EqualFold(pt.Protocol, "udp") {
			tcpPublic = true
		}
	}
	for i, pt := range w.Ports {
		if pt.HostPort != 0 && pt.HostPort != pt.Port {
			add(fmt.Sprintf("ports[%d].hostPort", i), "gcp: containers use the host network: hostPort must equal port")
		}
		if pt.Public && strings.EqualFold(pt.Protocol, "udp") && !tcpPublic && (w.Health == nil || w.Health.Kind() == "command") {
			add(fmt.Sprintf("ports[%d].public", i), "gcp: a load balancer's backend service needs a health check and Compute Engine "+
				"cannot probe UDP: declare health.http or health.tcp on a TCP port the container serves")
			tcpPublic = true // once
		}
	}
	_, probs := machineTypeFor(v.s.MachineType, w)
	for _, pr := range probs {
		add(pr.field, pr.message)
	}
	if w.Replicas > maxReplicas {
		add("replicas", fmt.Sprintf("gcp: a regional managed instance group holds at most %d instances", maxReplicas))
	}
	return out
}

// Close implements providers.Closer.
func (p *Provider) Close() error {
	var errs []error
	for _, c := range []interface{ Close() error }{p.templates, p.groups, p.regionGroups, p.regions, p.instances, p.regionOps, p.globalOps, p.secrets,
		p.healthChecks, p.firewallsC, p.addressesC, p.backends, p.rules} {
		if c != nil && !isNilClient(c) {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

func isNilClient(c interface{ Close() error }) bool {
	switch v := c.(type) {
	case *compute.InstanceTemplatesClient:
		return v == nil
	case *compute.RegionInstanceGroupManagersClient:
		return v == nil
	case *compute.RegionOperationsClient:
		return v == nil
	case *compute.GlobalOperationsClient:
		return v == nil
	case *compute.RegionInstanceGroupsClient:
		return v == nil
	case *compute.RegionsClient:
		return v == nil
	case *compute.InstancesClient:
		return v == nil
	case *secretmanager.Client:
		return v == nil
	case *compute.HealthChecksClient:
		return v == nil
	case *compute.FirewallsClient:
		return v == nil
	case *compute.AddressesClient:
		return v == nil
	case *compute.RegionBackendServicesClient:
		return v == nil
	case *compute.ForwardingRulesClient:
		return v == nil
	}
	return false
}

var (
	_ providers.Provider   = (*Provider)(nil)
	_ providers.Validator  = (*Provider)(nil)
	_ providers.Normalizer = (*Provider)(nil)
	_ providers.Closer     = (*Provider)(nil)

	_ providers.EnvironmentLister = (*Provider)(nil)
)
