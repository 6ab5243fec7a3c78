package aws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/aws/awserr"
	"github.com/berth-dev/berth/schema"
)

// Type is the target type served.
const Type = "aws"

// Defaults of the provider's tunables.
const (
	DefaultPollInterval  = 5 * time.Second
	DefaultRetryBase     = 250 * time.Millisecond
	DefaultRetryMax      = 20 * time.Second
	DefaultRetryAttempts = 8
	// CallTimeout bounds each ECS call.
	CallTimeout = 30 * time.Second
)

func init() {
	providers.Register(Type, New)
	providers.RegisterOffline(Type, Offline)
}

// Provider runs workloads as ECS services on Fargate in one cluster. Build it with New or NewWithClient. The
// exported tunables may be changed before the first call, never after.
type Provider struct {
	// PollInterval paces the waits of Apply and Delete.
	PollInterval time.Duration
	// RetryBase, RetryMax and RetryAttempts shape the retries of a transient failure of one call: capped
	// exponential backoff with jitter, at most RetryAttempts tries.
	RetryBase, RetryMax time.Duration
	RetryAttempts       int

	client *ecs.Client
	sm     *secretsmanager.Client // nil with NewWithClient until WithSecretsManager
	ec2    *ec2.Client            // nil with NewWithClient until WithEC2
	elb    *elb.Client            // nil with NewWithClient until WithELBv2
	creds  *credentials           // nil with NewWithClient
	target string
	set    settings
	log    *slog.Logger

	mu  sync.Mutex
	tds map[string]tdInfo // task definition ARN → what it says (revisions are immutable)
	vpc string            // the subnets' VPC, once read
}

type settings struct {
	region, cluster, profile, endpoint string
	secretsEndpoint, ec2Endpoint       string
	elbv2Endpoint, loadBalancer, vpcID string
	internal                           bool // berth's load balancers are internal, not internet-facing
	subnets, securityGroups            []string
	assignPublicIP                     bool
	executionRoleArn, taskRoleArn      string
}

// New builds the provider for target t: credentials from the AWS default chain (environment, shared config and
// credentials files with settings.profile, web identity, container and instance roles), the ECS endpoint of the
// region or settings.endpoint, the Secrets Manager endpoint of the region or settings.secretsEndpoint (the SDK's
// AWS_ENDPOINT_URL_SECRETS_MANAGER when unset), the EC2 endpoint of the region or settings.ec2Endpoint (the SDK's
// AWS_ENDPOINT_URL_EC2 when unset) for the subnets' VPC, the ELBv2 endpoint of the
// region or settings.elbv2Endpoint (AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2 when unset) for public ports and
// HTTP/TCP health checks. It is the registered factory.
func New(t schema.Target, opts providers.Options) (providers.Provider, error) {
	s, err := parseSettings(t)
	if err != nil {
		return nil, err
	}
	lopts := []func(*config.LoadOptions) error{config.WithRegion(s.region)}
	if s.profile != "" {
		lopts = append(lopts, config.WithSharedConfigProfile(s.profile))
	}
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx, lopts...)
	if err != nil {
		return nil, fmt.Errorf("%s: target %q: AWS configuration: %w; %s", t.Pos, t.Name, err, explainConfig(err))
	}
	creds := &credentials{next: cfg.Credentials}
	cfg.Credentials = creds
	client := ecs.NewFromConfig(cfg, func(o *ecs.Options) {
		if s.endpoint != "" {
			o.BaseEndpoint = aws.String(s.endpoint)
		}
		o.Retryer = aws.NopRetryer{} // one retry layer: the provider's own, which classifies
	})
	p := newProvider(client, t, s, opts)
	p.creds = creds
	p.sm = secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		if s.secretsEndpoint != "" {
			o.BaseEndpoint = aws.String(s.secretsEndpoint)
		}
		o.Retryer = aws.NopRetryer{}
	})
	p.ec2 = ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if s.ec2Endpoint != "" {
			o.BaseEndpoint = aws.String(s.ec2Endpoint)
		}
		o.Retryer = aws.NopRetryer{}
	})
	p.elb = elb.NewFromConfig(cfg, func(o *elb.Options) {
		if s.elbv2Endpoint != "" {
			o.BaseEndpoint = aws.String(s.elbv2Endpoint)
		}
		o.Retryer = aws.NopRetryer{}
	})
	return p, nil
}

// NewWithClient builds the provider on an existing ECS client (tests, callers with their own configuration). The
// region, profile and endpoint settings are then the client's business; the others still apply. The client's own
// retries should be off (aws.NopRetryer) so that only the provider's classification retries. SOPS secrets need a
// Secrets Manager client too: give one with WithSecretsManager.
func NewWithClient(client *ecs.Client, t schema.Target, opts providers.Options) (*Provider, error) {
	s, err := parseSettings(t)
	if err != nil {
		return nil, err
	}
	return newProvider(client, t, s, opts), nil
}

// WithSecretsManager gives the provider the Secrets Manager client it keeps SOPS secrets' values with (see
// NewWithClient; retries off as there), before the first call. It returns p.
func (p *Provider) WithSecretsManager(c *secretsmanager.Client) *Provider {
	p.sm = c
	return p
}

// WithEC2 gives the provider the EC2 client it reads the subnets' VPC with (DescribeSubnets, for the target
// groups of public ports when the target has no vpcId; see NewWithClient; retries off as there), before the
// first call. It returns p.
func (p *Provider) WithEC2(c *ec2.Client) *Provider {
	p.ec2 = c
	return p
}

// WithELBv2 gives the provider the Elastic Load Balancing v2 client it serves public ports and HTTP/TCP health
// checks with (see NewWithClient; retries off as there), before the first call. It returns p.
func (p *Provider) WithELBv2(c *elb.Client) *Provider {
	p.elb = c
	return p
}

func newProvider(client *ecs.Client, t schema.Target, s settings, opts providers.Options) *Provider {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{
		PollInterval: DefaultPollInterval, RetryBase: DefaultRetryBase, RetryMax: DefaultRetryMax,
		RetryAttempts: DefaultRetryAttempts,
		client:        client, target: t.Name, set: s, tds: map[string]tdInfo{},
		log: log.With("provider", Type, "target", t.Name),
	}
}

// parseSettings checks the values of the #AWSTarget settings (the loader already checked the keys).
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
		case "region", "cluster", "profile", "endpoint", "secretsEndpoint", "ec2Endpoint", "elbv2Endpoint", "executionRoleArn",
			"taskRoleArn", "loadBalancer", "vpcId":
			str, ok := v.(string)
			if !ok || str == "" {
				return s, bad(k, fmt.Sprintf("want a non-empty string, got %T", v))
			}
			switch k {
			case "region":
				s.region = str
			case "cluster":
				s.cluster = str
			case "profile":
				s.profile = str
			case "endpoint", "secretsEndpoint", "ec2Endpoint", "elbv2Endpoint":
				if !strings.HasPrefix(str, "http://") && !strings.HasPrefix(str, "https://") {
					return s, bad(k, "want an http:// or https:// URL")
				}
				switch k {
				case "endpoint":
					s.endpoint = str
				case "secretsEndpoint":
					s.secretsEndpoint = str
				case "elbv2Endpoint":
					s.elbv2Endpoint = str
				default:
					s.ec2Endpoint = str
				}
			case "loadBalancer":
				if !strings.HasPrefix(str, "arn:") && (len(str) > maxELBNameLen || elbSafe(str, maxELBNameLen) != str) {
					return s, bad(k, "want a load balancer's ARN or name (at most 32 letters, digits and hyphens)")
				}
				s.loadBalancer = str
			case "vpcId":
				if !strings.HasPrefix(str, "vpc-") {
					return s, bad(k, "want a VPC id (vpc-...)")
				}
				s.vpcID = str
			case "executionRoleArn":
				s.executionRoleArn = str
			case "taskRoleArn":
				s.taskRoleArn = str
			}
			if (k == "executionRoleArn" || k == "taskRoleArn") && !strings.HasPrefix(str, "arn:") {
				return s, bad(k, "want an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
			}
		case "subnets", "securityGroups":
			list, err := stringList(v)
			if err != nil {
				return s, bad(k, err.Error())
			}
			if k == "subnets" {
				s.subnets = list
			} else {
				s.securityGroups = list
			}
		case "assignPublicIp", "internalLoadBalancer":
			b, ok := v.(bool)
			if !ok {
				return s, bad(k, fmt.Sprintf("want a bool, got %T", v))
			}
			if k == "assignPublicIp" {
				s.assignPublicIP = b
			} else {
				s.internal = b
			}
		case "type":
		default:
			return s, bad(k, "unknown setting")
		}
	}
	switch {
	case s.region == "":
		return s, bad("region", "required")
	case s.cluster == "":
		return s, bad("cluster", "required")
	case len(s.subnets) == 0:
		return s, bad("subnets", "at least one subnet is required (awsvpc)")
	}
	return s, nil
}

func stringList(v any) ([]string, error) {
	switch l := v.(type) {
	case []string:
		return l, nil
	case []any:
		out := make([]string, len(l))
		for i, e := range l {
			s, ok := e.(string)
			if !ok || s == "" {
				return nil, fmt.Errorf("element %d: want a non-empty string, got %T", i, e)
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a list of strings, got %T", v)
}

// Type is "aws".
func (p *Provider) Type() string { return Type }

// Capabilities of ECS on Fargate with Elastic Load Balancing v2 (capabilities of the target's settings).
func (p *Provider) Capabilities() providers.Capabilities { return capabilities(p.set) }

// capabilities: public ports through an ELBv2 network load balancer (berth's own per workload, or listeners on
// the target's loadBalancer) and target groups of ip targets, HTTP and TCP health checks as the target groups'
// health checks, command checks run by ECS inside the container, UDP and TCP ports, CPU and memory from the Fargate
// table. Secrets: AWS references (Secrets Manager and SSM ARNs, resolved by ECS at task start) and SOPS values
// (kept in a Secrets Manager secret of berth's), as environment variables only: ECS has no secret files.
func capabilities(s settings) providers.Capabilities {
	lb := "a network load balancer per workload, made by berth"
	if s.loadBalancer != "" {
		lb = "network load balancer " + s.loadBalancer
	}
	return providers.Capabilities{HealthHTTP: true, HealthTCP: true, HealthCommand: true, PublicPorts: true, UDP: true,
		CPULimit: true, MemoryLimit: true, SecretKinds: []string{schema.SecretAWS, schema.SecretSOPS},
		How: map[string]string{
			providers.FeaturePublicPort:    "ELBv2 listener → target group (ip targets) on " + lb,
			providers.FeatureAddress:       "the load balancer's DNS name and the listener's port",
			providers.FeatureHealthHTTP:    "ELBv2 target group HTTP health check (2xx/3xx; interval ≥ 5 s, timeout ≥ 2 s, retries ≥ 2)",
			providers.FeatureHealthTCP:     "ELBv2 target group TCP health check (interval ≥ 5 s, timeout ≥ 2 s, retries ≥ 2)",
			providers.FeatureHealthCommand: "ECS container health check (exec form, run inside the container)",
			providers.FeatureCPU:           "Fargate task size: the smallest CPU units that hold it",
			providers.FeatureMemory:        "Fargate task size: the smallest memory valid for that CPU",
			providers.FeatureArgs:          "container entryPoint (command) and command (args)",
			providers.FeatureRollout:       "ECS rolling deployment, minimumHealthyPercent 100 / maximumPercent 200, circuit breaker with rollback, new tasks healthy in the target groups first",
		}}
}

// Offline is the provider's description from the target's settings alone (providers.RegisterOffline): the same
// Capabilities and Validate as a provider built for the target, with no SDK configuration or credentials.
func Offline(t schema.Target) (providers.Capabilities, providers.Validator, error) {
	s, err := parseSettings(t)
	if err != nil {
		return providers.Capabilities{}, nil, err
	}
	return capabilities(s), validator{s}, nil
}

type validator struct{ s settings }

func (v validator) Validate(w schema.Workload) []providers.Problem { return validate(v.s, w) }

// Validate reports what ECS on Fargate with ELBv2 cannot honour (validate).
func (p *Provider) Validate(w schema.Workload) []providers.Problem { return validate(p.set, w) }

// validate reports what ECS on Fargate with ELBv2 cannot honour, so that the plan refuses it instead of sending
// it: an HTTP or TCP check of a port that is not a public TCP port (a target group checks only behind a listener)
// or with values above ELBv2's maxima (interval 300 s, timeout 120 s, retries 10; values under its minima are
// raised to them: 5 s, 2 s, 2) or a timeout longer than the interval; a UDP public port without such a check (ELBv2
// checks UDP targets over TCP or HTTP); one container port for both TCP and UDP (ECS allows a container port in
// one port mapping only); CPU/memory beyond the Fargate table; command check timings out of ECS's bounds
// (interval 5–300 s, timeout 2–60 s, retries 1–10, startPeriod 0–300 s).
func validate(_ settings, w schema.Workload) []providers.Problem {
	var out []providers.Problem
	switch w.Health.Kind() {
	case "http", "tcp":
		out = append(out, healthProblems(w)...)
	case "command":
		h := w.Health
		secs := func(d schema.Duration) int { return int((d.D() + time.Second - 1) / time.Second) } // as sent
		for _, c := range []struct {
			field, unit string
			v           int
			lo, hi      int
		}{
			{"health.interval", "seconds", secs(h.Interval), minInterval, maxInterval},
			{"health.timeout", "seconds", secs(h.Timeout), minTimeout, maxTimeout},
			{"health.retries", "retries", h.Retries, minRetries, maxRetries},
			{"health.startPeriod", "seconds", secs(h.StartPeriod), minStartPeriod, maxStartPeriod},
		} {
			if c.v < c.lo || c.v > c.hi {
				out = append(out, providers.Problem{Field: c.field,
					Message: fmt.Sprintf("ECS container health checks accept %d to %d %s here; %d asked", c.lo, c.hi, c.unit, c.v)})
			}
		}
		out = append(out, healthProblems(w)...)
	default:
		out = append(out, healthProblems(w)...)
	}
	out = append(out, duplicatePorts(w.Ports)...)
	_, _, problems := fargateSize(w.Resources)
	return append(out, problems...)
}

// Close releases nothing: the SDK client holds no resources that need closing.
func (p *Provider) Close() error { return nil }

// classify sorts an ECS error.
func classify(err error) providers.Class {
	var ce *credentialsError
	if errors.As(err, &ce) { // nothing was sent: the chain found no credentials, or its endpoint failed
		if ce.transient() {
			return providers.Transient
		}
		return providers.Invalid
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
			"ServerException", "ServiceUnavailable", "InternalFailure", "UpdateInProgressException",
			"ConflictException", "ResourceInUseException",
			// ELBv2: a target group a listener or service is still letting go, a request still in flight.
			"ResourceInUse", "PriorRequestNotComplete":
			return providers.Transient
		case "ClientException", "InvalidParameterException", "PlatformUnknownException",
			// A quota (revisions of a family, services of a cluster, tags) is not lifted by waiting.
			"LimitExceededException",
			"PlatformTaskDefinitionIncompatibilityException", "UnsupportedFeatureException", "AccessDeniedException",
			"ClusterNotFoundException", "MissingAuthenticationTokenException", "UnrecognizedClientException",
			"InvalidSignatureException", "SerializationException", "ExpiredTokenException", "AccessDenied",
			// Secrets Manager: a KMS key that cannot encrypt or decrypt, a value or name it refuses.
			"DecryptionFailure", "EncryptionFailure", "MalformedPolicyDocumentException", "PreconditionNotMetException",
			// ELBv2: a request it refuses, a quota, names or protocols that do not fit, identities it does not know.
			"ValidationError", "DuplicateLoadBalancerName", "DuplicateTargetGroupName", "DuplicateListener",
			"TooManyLoadBalancers", "TooManyTargetGroups", "TooManyListeners", "TooManyTags", "TooManyTargets",
			"InvalidConfigurationRequest", "IncompatibleProtocols", "InvalidSubnet", "InvalidSecurityGroup", "SubnetNotFound",
			"TargetGroupAssociationLimit", "InvalidTarget", "InvalidClientTokenId", "InvalidScheme":
			return providers.Invalid
		}
	}
	return awserr.Transport(err)
}

// call runs one call with a timeout, retrying transient failures with capped exponential backoff and jitter
// within RetryAttempts; invalid requests come back wrapped in providers.Permanent, and missing or refused
// credentials and denied access with the fix (explain).
func (p *Provider) call(ctx context.Context, op string, f func(ctx context.Context) error) error {
	r := providers.Retry{Base: p.RetryBase, Max: p.RetryMax, Attempts: p.RetryAttempts, Timeout: CallTimeout,
		Classify: classify, Logger: p.log}
	err := r.Do(ctx, "ecs "+op, f)
	if !errors.Is(err, providers.ErrPermanent) {
		return err
	}
	if e := p.explain(err); e != err {
		return providers.Permanent(e)
	}
	return err
}

// callSM is call for a Secrets Manager operation: the same retries and classification, and a denied access
// explained with the Secrets Manager permissions berth needs.
func (p *Provider) callSM(ctx context.Context, op string, f func(ctx context.Context) error) error {
	r := providers.Retry{Base: p.RetryBase, Max: p.RetryMax, Attempts: p.RetryAttempts, Timeout: CallTimeout,
		Classify: classify, Logger: p.log}
	err := r.Do(ctx, "secretsmanager "+op, f)
	if !errors.Is(err, providers.ErrPermanent) {
		return err
	}
	if e := p.explainSM(err); e != err {
		return providers.Permanent(e)
	}
	return err
}

// callEC2 is call for an EC2 operation: the same timeout, retries and classification (EC2's RequestLimitExceeded
// and 5xx answers are transient), without ECS's explanations.
func (p *Provider) callEC2(ctx context.Context, op string, f func(ctx context.Context) error) error {
	r := providers.Retry{Base: p.RetryBase, Max: p.RetryMax, Attempts: p.RetryAttempts, Timeout: CallTimeout,
		Classify: classify, Logger: p.log}
	return r.Do(ctx, "ec2 "+op, f)
}

var _ providers.Provider = (*Provider)(nil)
var _ providers.Validator = (*Provider)(nil)
var _ providers.Validator = validator{}
var _ providers.Normalizer = (*Provider)(nil)
var _ providers.Closer = (*Provider)(nil)
var _ providers.EnvironmentLister = (*Provider)(nil)
