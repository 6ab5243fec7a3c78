package kubernetes

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// Type is the target type served.
const Type = "kubernetes"

// FieldManager is the server-side apply field manager of every object berth writes.
const FieldManager = "berth"

// Defaults of the provider's tunables.
const (
	DefaultPollInterval  = 2 * time.Second
	DefaultRetryBase     = 200 * time.Millisecond
	DefaultRetryMax      = 10 * time.Second
	DefaultRetryAttempts = 8
	// DefaultQPS and DefaultBurst rate-limit the client unless the kubeconfig's loader set a limit.
	DefaultQPS   = 20
	DefaultBurst = 40
	// CallTimeout bounds each API call.
	CallTimeout = 30 * time.Second
)

func init() { providers.Register(Type, New) }

var (
	_ providers.Provider   = (*Provider)(nil)
	_ providers.Validator  = (*Provider)(nil)
	_ providers.Normalizer = (*Provider)(nil)

	_ providers.EnvironmentLister  = (*Provider)(nil)
	_ providers.EnvironmentDeleter = (*Provider)(nil)
)

// Provider runs workloads as Deployments and Services of one Kubernetes cluster. Build it with New or
// NewWithClient. The exported tunables may be changed before the first call, never after.
type Provider struct {
	// PollInterval paces the rollout and deletion waits.
	PollInterval time.Duration
	// RetryBase, RetryMax and RetryAttempts shape the retries of one call's transient failures: capped exponential
	// backoff with jitter, at most RetryAttempts tries.
	RetryBase, RetryMax time.Duration
	RetryAttempts       int

	client k8s.Interface
	target string
	set    settings
	log    *slog.Logger

	mu         sync.Mutex
	namespaces map[string]bool // environments' namespaces made sure of: whether berth created them for their owner
}

type settings struct {
	kubeconfig, context, namespace string
	allowExecPlugins               bool
	// takeOwnership lets Apply remove values another field manager added inside the fields berth manages.
	takeOwnership bool
	// ingressClass is the ingressClassName of preview Ingresses ("" for the cluster's default class).
	ingressClass string
}

// New builds the provider for target t from its kubeconfig (settings kubeconfig and context) or, absent both, the
// in-cluster configuration. A kubeconfig whose user runs an exec credential plugin is refused unless
// allowExecPlugins is true. It is the registered factory.
func New(t schema.Target, opts providers.Options) (providers.Provider, error) {
	s, err := parseSettings(t)
	if err != nil {
		return nil, err
	}
	cfg, err := restConfig(t, s)
	if err != nil {
		return nil, err
	}
	if cfg.QPS == 0 && cfg.RateLimiter == nil { // client-go's default of 5/s makes a rollout wait crawl
		cfg.QPS, cfg.Burst = DefaultQPS, DefaultBurst
	}
	client, err := k8s.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: target %q: kubernetes client: %w", t.Pos, t.Name, err)
	}
	return newProvider(client, t, s, opts), nil
}

// NewWithClient builds the provider on an existing clientset (tests, callers with their own configuration); the
// kubeconfig settings are then ignored, the namespace setting still applies.
func NewWithClient(client k8s.Interface, t schema.Target, opts providers.Options) (*Provider, error) {
	s, err := parseSettings(t)
	if err != nil {
		return nil, err
	}
	return newProvider(client, t, s, opts), nil
}

func newProvider(client k8s.Interface, t schema.Target, s settings, opts providers.Options) *Provider {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{
		PollInterval: DefaultPollInterval, RetryBase: DefaultRetryBase, RetryMax: DefaultRetryMax,
		RetryAttempts: DefaultRetryAttempts,
		client:        client, target: t.Name, set: s, namespaces: map[string]bool{},
		log: log.With("provider", Type, "target", t.Name),
	}
}

// Type implements providers.Provider.
func (p *Provider) Type() string { return Type }

// Capabilities implements providers.Provider: what Offline reports for the target (capabilities).
func (p *Provider) Capabilities() providers.Capabilities { return capabilities() }

// parseSettings checks the values of the #KubernetesTarget settings (the loader already checked the keys).
func parseSettings(t schema.Target) (settings, error) {
	var s settings
	bad := func(k, why string) error {
		return fmt.Errorf("%s: target %q: settings.%s: %s", t.Pos, t.Name, k, why)
	}
	keys := make([]string, 0, len(t.Settings))
	for k := range t.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := t.Settings[k]
		switch k {
		case "kubeconfig", "context", "namespace":
			str, ok := v.(string)
			if !ok || str == "" {
				return s, bad(k, fmt.Sprintf("want a non-empty string, got %T", v))
			}
			switch k {
			case "kubeconfig":
				s.kubeconfig = str
			case "context":
				s.context = str
			case "namespace":
				if msg := dnsLabel(str); msg != "" {
					return s, bad(k, msg)
				}
				s.namespace = str
			}
		case "allowExecPlugins", "takeOwnership":
			b, ok := v.(bool)
			if !ok {
				return s, bad(k, fmt.Sprintf("want a bool, got %T", v))
			}
			if k == "takeOwnership" {
				s.takeOwnership = b
			} else {
				s.allowExecPlugins = b
			}
		case "ingressClass":
			// Read tolerantly: an empty value is the cluster's default class.
			str, ok := v.(string)
			if !ok {
				return s, bad(k, fmt.Sprintf("want a string, got %T", v))
			}
			if str != "" {
				if errs := validation.IsDNS1123Subdomain(str); len(errs) > 0 {
					return s, bad(k, strings.Join(errs, "; "))
				}
			}
			s.ingressClass = str
		case "type":
		default:
			return s, bad(k, "unknown setting")
		}
	}
	return s, nil
}

// restConfig loads the client configuration: the kubeconfig file (and context) when set, else in-cluster. Exec
// credential plugins run arbitrary commands: they are refused unless the target allows them.
func restConfig(t schema.Target, s settings) (*rest.Config, error) {
	if s.kubeconfig == "" && s.context == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("%s: target %q: no kubeconfig set and not in a cluster: %w", t.Pos, t.Name, err)
		}
		return cfg, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if s.kubeconfig != "" {
		rules = &clientcmd.ClientConfigLoadingRules{ExplicitPath: s.kubeconfig}
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: s.context})
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("%s: target %q: settings.kubeconfig: %w", t.Pos, t.Name, err)
	}
	ctxName := s.context
	if ctxName == "" {
		ctxName = raw.CurrentContext
	}
	kctx, ok := raw.Contexts[ctxName]
	if !ok {
		return nil, fmt.Errorf("%s: target %q: settings.context: context %q not in the kubeconfig", t.Pos, t.Name, ctxName)
	}
	if ai, ok := raw.AuthInfos[kctx.AuthInfo]; ok && ai.Exec != nil && !s.allowExecPlugins {
		return nil, fmt.Errorf("%s: target %q: settings.allowExecPlugins: user %q of context %q runs the credential plugin %q; set allowExecPlugins: true to allow it: %w",
			t.Pos, t.Name, kctx.AuthInfo, ctxName, ai.Exec.Command, ErrExecPlugin)
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%s: target %q: settings.kubeconfig: %w", t.Pos, t.Name, err)
	}
	return cfg, nil
}
