package azure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure/azcred"
	"github.com/berth-dev/berth/providers/registry"
	"github.com/berth-dev/berth/schema"
)

// Defaults of the Provider's tunables.
const (
	DefaultPollInterval = 2 * time.Second
	DefaultMaxPollDelay = time.Minute
	DefaultReadyTimeout = 15 * time.Minute
	DefaultRetryBase    = time.Second
	DefaultRetryMax     = 30 * time.Second
	DefaultRetryBudget  = 10 * time.Minute
	// DefaultCPU and DefaultMemoryGB are requested when a workload sets no resources (ACI requires requests).
	DefaultCPU      = 1.0
	DefaultMemoryGB = 1.5
	// MaxCPUMillis and MaxMemoryBytes are the per-group limits of a standard Linux container group.
	MaxCPUMillis   = 4000
	MaxMemoryBytes = 16 << 30
)

func init() { providers.Register("azure", New) }

// Provider runs workloads as Azure container groups, one per replica. Build it with New or NewWithCredential.
// The exported durations may be changed before the first call (tests make them milliseconds).
type Provider struct {
	client                                 *armcontainerinstance.ContainerGroupsClient
	target, resourceGroup, location, dnsPx string
	subscription                           string
	// credKind is settings.credential, for errors.
	credKind string
	log      *slog.Logger

	// PollInterval paces the polling of operations and of readiness (a Retry-After above it wins, up to
	// MaxPollDelay).
	PollInterval time.Duration
	MaxPollDelay time.Duration
	// ReadyTimeout bounds the wait for one group to run after it is provisioned.
	ReadyTimeout time.Duration
	// RetryBase, RetryMax and RetryBudget shape the retries of transient errors that escape the SDK's own retry
	// policy (conflicts, failed operations, exhausted throttling): exponential from RetryBase, capped at RetryMax,
	// for at most RetryBudget per step.
	RetryBase, RetryMax, RetryBudget time.Duration
	// ListConcurrency bounds the Get calls a List pass runs at once (default DefaultListConcurrency).
	ListConcurrency int
	// Registry reads the image's entrypoint from its registry for a workload that gives args without a command
	// (ACI's command replaces the entrypoint). NewWithCredential sets an anonymous client; set Credentials on it for
	// a private registry, or HTTP for a registry whose certificate the system does not trust.
	Registry *registry.Client
	// KeyVault tunes the Key Vault clients that read azure secret references (nil: the SDK's defaults). Tests set
	// Transport (an emulator) and Retry.
	KeyVault *azsecrets.ClientOptions

	// cred is the provider's own credential, for Resource Manager and Key Vault alike.
	cred azcore.TokenCredential
	// vaultDomain is the Key Vault domain of the target's cloud (".vault.azure.net").
	vaultDomain string
	vaults      keyVaults
}

// Settings are the target's decoded settings.
type Settings struct {
	SubscriptionID, ResourceGroup, Location string
	Credential                              string // default "default"
	DNSLabelPrefix                          string
	Endpoint                                string
}

// ParseSettings checks a target's settings.
func ParseSettings(t schema.Target) (Settings, error) {
	s := Settings{Credential: "default"}
	keys := make([]string, 0, len(t.Settings))
	for k := range t.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, ok := t.Settings[k].(string)
		if !ok || v == "" {
			return s, fmt.Errorf("%s: target %q: settings.%s: want a non-empty string, got %T", t.Pos, t.Name, k, t.Settings[k])
		}
		switch k {
		case "subscriptionId":
			s.SubscriptionID = v
		case "resourceGroup":
			s.ResourceGroup = v
		case "location":
			s.Location = v
		case "credential":
			switch v {
			case "default", "environment", "workload-identity", "managed-identity", "cli":
			default:
				return s, fmt.Errorf("%s: target %q: settings.credential: %q is not one of default, environment, workload-identity, managed-identity, cli", t.Pos, t.Name, v)
			}
			s.Credential = v
		case "dnsLabelPrefix":
			if sanitize(v) != v || len(v) > 40 || v[0] < 'a' || v[0] > 'z' {
				return s, fmt.Errorf("%s: target %q: settings.dnsLabelPrefix: %q must be at most 40 lower-case letters, digits and single dashes, starting with a letter (ACI refuses DNS name labels that do not)", t.Pos, t.Name, v)
			}
			s.DNSLabelPrefix = v
		case "endpoint":
			if !strings.HasPrefix(v, "https://") && !strings.HasPrefix(v, "http://") {
				return s, fmt.Errorf("%s: target %q: settings.endpoint: %q is not an http(s) URL", t.Pos, t.Name, v)
			}
			s.Endpoint = strings.TrimSuffix(v, "/")
		default:
			return s, fmt.Errorf("%s: target %q: settings.%s: unknown setting (known: subscriptionId, resourceGroup, location, credential, dnsLabelPrefix, endpoint)", t.Pos, t.Name, k)
		}
	}
	for k, v := range map[string]string{"subscriptionId": s.SubscriptionID, "resourceGroup": s.ResourceGroup, "location": s.Location} {
		if v == "" {
			return s, fmt.Errorf("%s: target %q: settings.%s is required", t.Pos, t.Name, k)
		}
	}
	return s, nil
}

// New builds the provider for target t, with credentials from the chain named by settings.credential. It is the
// registered factory.
func New(t schema.Target, opts providers.Options) (providers.Provider, error) {
	s, err := ParseSettings(t)
	if err != nil {
		return nil, err
	}
	c := azcred.Cloud(s.Endpoint)
	copts := azcore.ClientOptions{Cloud: c}
	var aopts *arm.ClientOptions
	if transport != nil {
		copts.Transport = transport
		aopts = &arm.ClientOptions{ClientOptions: policy.ClientOptions{Transport: transport}}
	}
	cred, err := azcred.Chain(s.Credential, copts)
	if err != nil {
		return nil, fmt.Errorf("azure target %q: settings.credential %q: %w. Tried: %s. To fix: %s", t.Name,
			s.Credential, err, chain(s.Credential), fixNoCredentials)
	}
	p, err := NewWithCredential(t, opts, cred, aopts)
	if err != nil {
		return nil, err
	}
	p.credKind = s.Credential
	if transport != nil {
		p.KeyVault = &azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: transport}}
	}
	return p, nil
}

// NewWithCredential builds the provider with an explicit credential. copts (may be nil) tunes the SDK client:
// tests set Transport (to trust the emulator's certificate) and Retry (short delays). Its Cloud is always set from
// settings.endpoint.
func NewWithCredential(t schema.Target, opts providers.Options, cred azcore.TokenCredential, copts *arm.ClientOptions) (*Provider, error) {
	s, err := ParseSettings(t)
	if err != nil {
		return nil, err
	}
	var o arm.ClientOptions
	if copts != nil {
		o = *copts
	}
	o.Cloud = azcred.Cloud(s.Endpoint)
	if strings.HasPrefix(s.Endpoint, "http://") {
		o.InsecureAllowCredentialWithHTTP = true
	}
	wrapped := azcred.Wrap(cred)
	client, err := armcontainerinstance.NewContainerGroupsClient(s.SubscriptionID, wrapped, &o)
	if err != nil {
		return nil, fmt.Errorf("target %q: container groups client: %w", t.Name, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{
		client: client, target: t.Name, resourceGroup: s.ResourceGroup, location: s.Location, dnsPx: s.DNSLabelPrefix,
		subscription: s.SubscriptionID, credKind: "given to NewWithCredential",
		log:          log.With("provider", "azure", "target", t.Name),
		PollInterval: DefaultPollInterval, MaxPollDelay: DefaultMaxPollDelay, ReadyTimeout: DefaultReadyTimeout,
		RetryBase: DefaultRetryBase, RetryMax: DefaultRetryMax, RetryBudget: DefaultRetryBudget,
		ListConcurrency: DefaultListConcurrency, Registry: &registry.Client{},
		cred: wrapped, vaultDomain: vaultSuffix(o.Cloud),
	}, nil
}

// Type is "azure".
func (p *Provider) Type() string { return "azure" }

// Capabilities: HTTP and command probes, public TCP/UDP ports, CPU and memory; secrets from SOPS files and Azure
// Key Vault, as secure environment values and as files (secret volumes). ACI probes are exec or httpGet only: a TCP
// check is a problem on health.tcp (see Validate). The offline description (offline.go) gives the same.
func (p *Provider) Capabilities() providers.Capabilities { return capabilities(p.dnsPx) }

// capabilities is what ACI honours for a target whose settings.dnsLabelPrefix is dnsPx ("" when unset: the
// address is then the group's IP).
func capabilities(dnsPx string) providers.Capabilities {
	address := "the first running group's public IP : port (ACI has no load balancer)"
	if dnsPx != "" {
		address = "the first running group's DNS name label FQDN (" + dnsPx + "-…) : port (ACI has no load balancer)"
	}
	return providers.Capabilities{HealthHTTP: true, HealthCommand: true, PublicPorts: true, UDP: true,
		CPULimit: true, MemoryLimit: true,
		SecretKinds: []string{schema.SecretSOPS, schema.SecretAzure}, SecretFiles: true,
		How: map[string]string{
			providers.FeaturePublicPort:    "container group public IP address (the container port itself: hostPort = port)",
			providers.FeatureAddress:       address,
			providers.FeatureHealthHTTP:    "ACI readiness and liveness probes (httpGet)",
			providers.FeatureHealthCommand: "ACI readiness and liveness probes (exec)",
			providers.FeatureCPU:           "container CPU request in cores (10m steps, at most 4 cores)",
			providers.FeatureMemory:        "container memoryInGB request, rounded up to 0.1 GB (at most 16 GB)",
			providers.FeatureArgs:          "one command list, command + args; args without command: the image's entrypoint, read from its registry config, + args",
			providers.FeatureRollout:       "make-before-break, one replica at a time: the new container group runs before the old one is deleted",
		}}
}

// Validate reports what ACI cannot honour beyond Capabilities.
func (p *Provider) Validate(w schema.Workload) []providers.Problem { return validate(w) }

// validate is Validate: it needs no provider, so the offline description runs it too.
func validate(w schema.Workload) []providers.Problem {
	var out []providers.Problem
	add := func(field, format string, args ...any) {
		out = append(out, providers.Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if h := w.Health; h.Kind() == "tcp" {
		add("health.tcp", "Azure Container Instances probes are exec or httpGet only, with no TCP check: a TCP check of port %d could only be an exec probe running a tool of the image (nc -z, or a shell's /dev/tcp), and berth cannot know from the registry that the image has one. Write health.command instead (for example [\"nc\", \"-z\", \"127.0.0.1\", \"%d\"]) if the image has such a tool, or health.http if the port serves HTTP",
			h.TCP.Port, h.TCP.Port)
	}
	if argsOnly(w) {
		// The entrypoint is read from the registry at apply time; offline, only the reference can be checked.
		if _, err := registry.ParseReference(w.Image); err != nil {
			add("image", "args without command: Azure Container Instances replaces the image's entrypoint with the command, so berth reads the entrypoint from the image's registry, and this image reference cannot be read: %v", err)
		}
	}
	for _, name := range sortedKeys(w.Env) {
		if !envName.MatchString(name) {
			add("env."+name, "Azure Container Instances refuses environment variable names other than a letter or '_' followed by letters, digits and '_'")
		}
	}
	validateSecrets(w, add)
	for i, port := range w.Ports {
		switch {
		case !port.Public:
			add(fmt.Sprintf("ports[%d].public", i), "internal port %d: container groups without a virtual network are reachable only through public ports", port.Port)
		case port.HostPort != 0 && port.HostPort != port.Port:
			add(fmt.Sprintf("ports[%d].hostPort", i), "public port %d: Azure Container Instances exposes the container port itself, so hostPort must equal port", port.Port)
		}
	}
	if c := w.Resources.CPUMillis; c < 0 || c > MaxCPUMillis || c%10 != 0 {
		add("resources.cpu", "%dm CPU: Azure Container Instances takes 10m to %dm in steps of 10m", c, MaxCPUMillis)
	}
	// Memory is rounded up to ACI's 0.1 GB step (as ECS rounds up to a Fargate size and Compute Engine to a machine
	// type): a request is a floor, so more is honouring it.
	if m := w.Resources.MemoryBytes; m < 0 || m > MaxMemoryBytes {
		add("resources.memory", "%d bytes: Azure Container Instances takes 0.1 to 16 GB", m)
	}
	return out
}

// retryable classifies an error from the SDK: throttling, server errors, timeouts, conflicts, quota and failed
// operations with a transient code retry; validation and other client errors, denied access, and a credential that
// could not get a token (unless Entra ID or the managed identity endpoint answered with throttling or a 5xx) do not.
func retryable(err error) bool {
	var ce *azcred.Error
	if errors.As(err, &ce) { // no token, so nothing was sent
		return azcred.Transient(ce.Err)
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		var nr *notReady
		return errors.As(err, &nr) || !errors.Is(err, providers.ErrPermanent) // network errors, per-call timeouts
	}
	switch re.ErrorCode {
	case "InaccessibleImage", "ResourceRequestsNotSupported", "InvalidRequestContent", "InvalidContainerGroupName",
		"LocationRequired", "InvalidTagNameCharacters", "InvalidTagValueLength", "InvalidTagNameLength", "InvalidTagCount",
		"InvalidIpAddressPorts", "DnsNameLabelNotAvailable",
		"AuthorizationFailed", "AuthenticationFailed", "InvalidAuthenticationToken", "InvalidAuthenticationTokenTenant",
		"ExpiredAuthenticationToken", "InvalidApiVersionParameter", "MissingApiVersionParameter",
		"SubscriptionNotFound", "ResourceGroupNotFound", "LocationNotAvailableForResourceType":
		return false
	case "TooManyRequests", "SubscriptionRequestsThrottled", "Conflict", "ContainerGroupTransitioning",
		"InternalServerError", "ServiceUnavailable", "GatewayTimeout", "OperationTimedOut", "OperationCanceled",
		"ContainerGroupQuotaReached", "StandardCoresQuotaExceeded", "ServerTimeout", "RetryableError":
		return true
	}
	switch s := re.StatusCode; {
	case s == http.StatusRequestTimeout, s == http.StatusConflict, s == http.StatusTooManyRequests, s >= 500:
		return true
	case s >= 400:
		return false
	}
	return true // an operation that ended Failed with a code not known to be permanent
}

// retry runs fn until it succeeds, fails permanently, or the budget is spent.
func (p *Provider) retry(ctx context.Context, what string, fn func() error) error {
	start := time.Now()
	delay := p.RetryBase
	for attempt := 1; ; attempt++ {
		err := fn()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, providers.ErrPermanent):
			return err
		case !retryable(err):
			return providers.Permanent(p.explain(err))
		case ctx.Err() != nil:
			return err
		case time.Since(start)+delay > p.RetryBudget:
			return fmt.Errorf("%s: giving up after %d attempts: %w", what, attempt, err)
		}
		p.log.WarnContext(ctx, "azure call failed, retrying", "step", what, "attempt", attempt, "delay", delay, "err", err)
		if err := providers.Sleep(ctx, delay); err != nil {
			return err
		}
		delay = min(2*delay, p.RetryMax)
	}
}

// apiError is a concise error for one failed call; it keeps the SDK's error for errors.As.
type apiError struct {
	op, group string
	err       error
}

func (e *apiError) Error() string {
	var re *azcore.ResponseError
	if errors.As(e.err, &re) {
		code, msg := errorBody(re)
		if code == "" {
			code = re.ErrorCode
		}
		return fmt.Sprintf("azure: %s container group %s: HTTP %d %s: %s", e.op, e.group, re.StatusCode, code, msg)
	}
	return fmt.Sprintf("azure: %s container group %s: %v", e.op, e.group, e.err)
}

func (e *apiError) Unwrap() error { return e.err }

func wrap(op, group string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("azure: %s container group %s: %w", op, group, err)
	}
	return &apiError{op: op, group: group, err: err}
}

// notReady is a group that did not become ready (it failed or stopped): the step is retried, recreating it.
type notReady struct{ group, why string }

func (e *notReady) Error() string { return "container group " + e.group + " is not ready: " + e.why }

var _ providers.Provider = (*Provider)(nil)
var _ providers.Validator = (*Provider)(nil)
var _ providers.Normalizer = (*Provider)(nil)
