package gcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"google.golang.org/api/option"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Type is the target type served.
const Type = "gcp"

func init() { providers.Register(Type, New) }

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
	if s.MachineType == "" {
		s.MachineType = "e2-small"
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
		target:         t.Name, project: s.Project, region: s.Region, machineType: s.MachineType,
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

// Capabilities: Container-Optimized OS runs the container on the host network with no health check and no
// resource limits; public ports get an ephemeral external IP per instance but no stable address. Secrets from SOPS
// files and Secret Manager, as environment values of the container declaration; no secret files (the declaration
// has no way to write one).
func (p *Provider) Capabilities() providers.Capabilities {
	return providers.Capabilities{UDP: true, MaxReplicas: 1000,
		SecretKinds: []string{schema.SecretSOPS, schema.SecretGCP}, SecretFiles: false}
}

// machine types whose size is known: vCPU in thousandths, memory in MiB.
var machineTypes = map[string]struct{ cpu, mem int64 }{
	"e2-micro": {2000, 1024}, "e2-small": {2000, 2048}, "e2-medium": {2000, 4096},
	"e2-standard-2": {2000, 8192}, "e2-standard-4": {4000, 16384}, "e2-standard-8": {8000, 32768},
	"n1-standard-1": {1000, 3840}, "n1-standard-2": {2000, 7680}, "n2-standard-2": {2000, 8192},
}

// Validate implements providers.Validator: what GCE with Container-Optimized OS cannot honour.
func (p *Provider) Validate(w schema.Workload) []providers.Problem {
	var out []providers.Problem
	if w.Health != nil {
		out = append(out, providers.Problem{Field: "health." + w.Health.Kind(), Message: "gcp: Container-Optimized OS has no container health check and berth does not create GCE health checks; readiness is the VM running"})
	}
	for i, pt := range w.Ports {
		if pt.Public {
			out = append(out, providers.Problem{Field: fmt.Sprintf("ports[%d].public", i), Message: "gcp: no stable public address (needs a load balancer and a firewall rule, not created); each instance gets an ephemeral external IP"})
		}
		if pt.HostPort != 0 && pt.HostPort != pt.Port {
			out = append(out, providers.Problem{Field: fmt.Sprintf("ports[%d].hostPort", i), Message: "gcp: containers use the host network: hostPort must equal port"})
		}
	}
	if mt, ok := machineTypes[p.machineType]; ok {
		if w.Resources.CPUMillis > mt.cpu {
			out = append(out, providers.Problem{Field: "resources.cpu", Message: fmt.Sprintf("gcp: %dm CPU exceeds machine type %s (%dm)", w.Resources.CPUMillis, p.machineType, mt.cpu)})
		}
		if w.Resources.MemoryBytes > mt.mem<<20 {
			out = append(out, providers.Problem{Field: "resources.memory", Message: fmt.Sprintf("gcp: %d MiB exceeds machine type %s (%d MiB)", w.Resources.MemoryBytes>>20, p.machineType, mt.mem)})
		}
	}
	if w.Replicas > 1000 {
		out = append(out, providers.Problem{Field: "replicas", Message: "gcp: a regional managed instance group holds at most 1000 instances"})
	}
	return out
}

// Close implements providers.Closer.
func (p *Provider) Close() error {
	var errs []error
	for _, c := range []interface{ Close() error }{p.templates, p.groups, p.regionGroups, p.regions, p.instances, p.regionOps, p.globalOps, p.secrets} {
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
