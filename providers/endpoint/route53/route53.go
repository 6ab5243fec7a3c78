package route53

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/smithy-go"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/aws/awserr"
	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/schema"
)

// Type is the router type served.
const Type = "route53"

// Defaults of the router's tunables.
const (
	DefaultRegion        = "us-east-1"
	DefaultRetryBase     = 250 * time.Millisecond
	DefaultRetryMax      = 20 * time.Second
	DefaultRetryAttempts = 8
	// DefaultPollInterval is the first wait between GetChange polls, doubled up to DefaultPollMax (Route 53
	// changes usually reach INSYNC within a minute).
	DefaultPollInterval = 2 * time.Second
	DefaultPollMax      = 15 * time.Second
	// DefaultChangeTimeout bounds the wait for INSYNC when ctx has no earlier deadline.
	DefaultChangeTimeout = 10 * time.Minute
	// CallTimeout bounds each API call.
	CallTimeout = 30 * time.Second
	// listPage is the page size of ListResourceRecordSets (Route 53's most).
	listPage = 300
)

func init() { endpoint.Register(Type, New) }

// Router serves stable names in one Route 53 hosted zone. Build it with New (the registered factory) or
// NewWithClient. The exported tunables may be changed before the first call, never after.
type Router struct {
	// RetryBase, RetryMax and RetryAttempts shape the retries of a transient failure of one call: capped
	// exponential backoff with jitter, at most RetryAttempts tries.
	RetryBase, RetryMax time.Duration
	RetryAttempts       int
	// PollInterval and PollMax pace the GetChange polls until INSYNC (backoff with jitter); ChangeTimeout bounds
	// that wait.
	PollInterval, PollMax time.Duration
	ChangeTimeout         time.Duration

	client *r53.Client
	zoneID string
	log    *slog.Logger

	mu   sync.Mutex
	zone string // the zone's name with its dot, once read
}

// settings of a `dns:` entry of type route53 (schema #Route53DNS).
type settings struct {
	Type     string `json:"type"`
	ZoneID   string `json:"zoneId"`
	Region   string `json:"region"`
	Profile  string `json:"profile"`
	Endpoint string `json:"endpoint"`
}

var zoneIDRE = regexp.MustCompile(`^[A-Z0-9]{1,32}$`)

// parseSettings decodes t.Settings once into settings; an unknown key is an error naming it.
func parseSettings(t schema.Target) (settings, error) {
	var s settings
	bad := func(format string, args ...any) error {
		return providers.Permanent(fmt.Errorf("%s: dns %q: %s", t.Pos, t.Name, fmt.Sprintf(format, args...)))
	}
	raw, err := json.Marshal(t.Settings)
	if err != nil {
		return s, bad("settings: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return s, bad("settings.%s: want a %s, got a JSON %s", ute.Field, ute.Type, ute.Value)
		}
		if k, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return s, bad("settings.%s: unknown setting (known: zoneId, region, profile, endpoint)", strings.Trim(k, `"`))
		}
		return s, bad("settings: %v", err)
	}
	s.ZoneID = strings.TrimPrefix(s.ZoneID, "/hostedzone/")
	switch {
	case s.Type != "" && s.Type != Type:
		return s, bad("settings.type: %q, want %q", s.Type, Type)
	case s.ZoneID == "":
		return s, bad("settings.zoneId: required (the hosted zone's ID, Z0123...)")
	case !zoneIDRE.MatchString(s.ZoneID):
		return s, bad("settings.zoneId: %q is not a hosted zone ID (upper-case letters and digits, Z0123...)", s.ZoneID)
	case s.Endpoint != "" && !strings.HasPrefix(s.Endpoint, "http://") && !strings.HasPrefix(s.Endpoint, "https://"):
		return s, bad("settings.endpoint: want an http:// or https:// URL")
	}
	if s.Region == "" {
		s.Region = DefaultRegion
	}
	return s, nil
}

// New builds the router of the `dns:` entry t: credentials from the AWS default chain (with settings.profile),
// signing for settings.region, the Route 53 endpoint of settings.endpoint or the SDK's configuration
// (AWS_ENDPOINT_URL_ROUTE_53). The SDK's own retries are off: the router retries, and classifies. It is the
// registered factory.
func New(t schema.Target, opts endpoint.Options) (endpoint.Router, error) {
	s, err := parseSettings(t)
	if err != nil {
		return nil, err
	}
	lopts := []func(*config.LoadOptions) error{config.WithRegion(s.Region)}
	if s.Profile != "" {
		lopts = append(lopts, config.WithSharedConfigProfile(s.Profile))
	}
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx, lopts...)
	if err != nil {
		return nil, providers.Permanent(fmt.Errorf("%s: dns %q: AWS configuration: %w", t.Pos, t.Name, err))
	}
	if cfg.Credentials != nil {
		cfg.Credentials = &credentials{next: cfg.Credentials}
	}
	client := r53.NewFromConfig(cfg, func(o *r53.Options) {
		if s.Endpoint != "" {
			o.BaseEndpoint = aws.String(s.Endpoint)
		}
		o.Retryer = aws.NopRetryer{}
	})
	return newRouter(client, t, s.ZoneID, opts), nil
}

// NewWithClient builds the router on an existing Route 53 client (its retries should be off: aws.NopRetryer);
// region, profile and endpoint are then the client's business, zoneId is still read from t.
func NewWithClient(client *r53.Client, t schema.Target, opts endpoint.Options) (*Router, error) {
	s, err := parseSettings(t)
	if err != nil {
		return nil, err
	}
	return newRouter(client, t, s.ZoneID, opts), nil
}

func newRouter(client *r53.Client, t schema.Target, zoneID string, opts endpoint.Options) *Router {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{RetryBase: DefaultRetryBase, RetryMax: DefaultRetryMax, RetryAttempts: DefaultRetryAttempts,
		PollInterval: DefaultPollInterval, PollMax: DefaultPollMax, ChangeTimeout: DefaultChangeTimeout,
		client: client, zoneID: zoneID, log: log.With("router", Type, "dns", t.Name)}
}

// Type is "route53".
func (r *Router) Type() string { return Type }

// Capabilities: weighted, host names (as CNAMEs), any TTL.
func (r *Router) Capabilities() endpoint.Capabilities {
	return endpoint.Capabilities{Weighted: true, HostNames: true}
}

// credentials wraps the SDK's credential chain so that a failure to obtain credentials keeps a type of its own:
// nothing was sent, and no retry brings credentials that are not configured.
type credentials struct{ next aws.CredentialsProvider }

func (c *credentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	v, err := c.next.Retrieve(ctx)
	if err != nil {
		return v, &credentialsError{err: err, attemptExpired: ctx.Err() != nil}
	}
	return v, nil
}

type credentialsError struct {
	err            error
	attemptExpired bool
}

func (e *credentialsError) Error() string { return "AWS credentials: " + e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// classify sorts a Route 53 error.
func classify(err error) providers.Class {
	var ce *credentialsError
	if errors.As(err, &ce) {
		if ce.attemptExpired {
			return providers.Transient
		}
		return providers.Invalid
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "Throttling", "ThrottlingException", "PriorRequestNotComplete", "RequestLimitExceeded",
			"TooManyRequestsException", "ServiceUnavailable", "InternalFailure", "InternalError":
			return providers.Transient
		case "InvalidChangeBatch", "InvalidInput", "InvalidArgument", "InvalidPaginationToken", "NoSuchHostedZone",
			"NoSuchChange", "MalformedXML", "AccessDenied", "AccessDeniedException", "InvalidClientTokenId",
			"SignatureDoesNotMatch", "IncompleteSignature", "MissingAuthenticationToken", "UnrecognizedClientException",
			"ExpiredToken", "ExpiredTokenException", "InvalidDomainName":
			return providers.Invalid
		}
	}
	return awserr.Transport(err)
}

// call runs one API call with CallTimeout, retrying transient failures (classify).
func (r *Router) call(ctx context.Context, op string, f func(ctx context.Context) error) error {
	rt := providers.Retry{Base: r.RetryBase, Max: r.RetryMax, Attempts: r.RetryAttempts, Timeout: CallTimeout,
		Classify: classify, Logger: r.log}
	return rt.Do(ctx, "route53 "+op, f)
}

// zoneName returns the hosted zone's name, read once with GetHostedZone.
func (r *Router) zoneName(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.zone != "" {
		return r.zone, nil
	}
	var out *r53.GetHostedZoneOutput
	err := r.call(ctx, "GetHostedZone", func(ctx context.Context) (err error) {
		out, err = r.client.GetHostedZone(ctx, &r53.GetHostedZoneInput{Id: aws.String(r.zoneID)})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("hosted zone %s: %w", r.zoneID, err)
	}
	if out.HostedZone == nil || aws.ToString(out.HostedZone.Name) == "" {
		return "", providers.Permanent(fmt.Errorf("hosted zone %s: GetHostedZone gave no name", r.zoneID))
	}
	r.zone = endpoint.Fqdn(aws.ToString(out.HostedZone.Name))
	return r.zone, nil
}

// checkName returns name as Route 53 holds it (endpoint.Fqdn), refusing (permanently) a name outside the zone,
// the apex, or a name whose records' names would be too long.
func (r *Router) checkName(ctx context.Context, name string) (string, error) {
	zone, err := r.zoneName(ctx)
	if err != nil {
		return "", err
	}
	n := endpoint.Fqdn(name)
	switch {
	case n == zone:
		return "", providers.Permanent(fmt.Errorf("%s is the apex of zone %s: a stable name must be below it", n, zone))
	case !strings.HasSuffix(n, "."+zone):
		return "", providers.Permanent(fmt.Errorf("%s is not inside hosted zone %s (%s)", n, zone, r.zoneID))
	case !validName(n) || len(endpoint.OwnerRecordName(n)) > 254:
		return "", providers.Permanent(fmt.Errorf("%s is not a DNS name berth can serve (labels of 1 to 63 characters, at most 230 in all)", n))
	}
	return n, nil
}

// list returns the record sets of name and below it, in Route 53's order: from name on, page by page, until a
// set's name is neither name nor below it (names are listed with their labels reversed, so that these come
// together). An empty name lists the whole zone.
func (r *Router) list(ctx context.Context, name string) ([]types.ResourceRecordSet, error) {
	var out []types.ResourceRecordSet
	in := &r53.ListResourceRecordSetsInput{HostedZoneId: aws.String(r.zoneID), MaxItems: aws.Int32(listPage)}
	if name != "" {
		in.StartRecordName = aws.String(name)
	}
	for {
		var page *r53.ListResourceRecordSetsOutput
		err := r.call(ctx, "ListResourceRecordSets", func(ctx context.Context) (err error) {
			page, err = r.client.ListResourceRecordSets(ctx, in)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, rs := range page.ResourceRecordSets {
			n := endpoint.Fqdn(unescape(aws.ToString(rs.Name)))
			if name != "" && n != name && !strings.HasSuffix(n, "."+name) {
				return out, nil
			}
			rs.Name = aws.String(n)
			out = append(out, rs)
		}
		if !page.IsTruncated {
			return out, nil
		}
		in.StartRecordName, in.StartRecordType = page.NextRecordName, page.NextRecordType
		in.StartRecordIdentifier = page.NextRecordIdentifier
	}
}

// unescape undoes Route 53's octal escapes of names ("\052" for '*').
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// change sends one change batch and waits until it is INSYNC.
func (r *Router) change(ctx context.Context, comment string, changes []types.Change) error {
	var out *r53.ChangeResourceRecordSetsOutput
	err := r.call(ctx, "ChangeResourceRecordSets", func(ctx context.Context) (err error) {
		out, err = r.client.ChangeResourceRecordSets(ctx, &r53.ChangeResourceRecordSetsInput{
			HostedZoneId: aws.String(r.zoneID),
			ChangeBatch:  &types.ChangeBatch{Comment: aws.String(comment), Changes: changes},
		})
		return err
	})
	if err != nil {
		return err
	}
	if out.ChangeInfo == nil {
		return nil
	}
	return r.waitInsync(ctx, *out.ChangeInfo)
}

// waitInsync polls GetChange until the change is INSYNC: capped exponential backoff with ±jitter, bounded by ctx
// and ChangeTimeout.
func (r *Router) waitInsync(ctx context.Context, info types.ChangeInfo) error {
	id := aws.ToString(info.Id)
	if info.Status == types.ChangeStatusInsync {
		return nil
	}
	if r.ChangeTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.ChangeTimeout)
		defer cancel()
	}
	wait := max(r.PollInterval, time.Millisecond)
	for polls := 1; ; polls++ {
		if err := providers.Sleep(ctx, wait/2+rand.N(wait/2+1)); err != nil {
			return fmt.Errorf("change %s still %s after %d polls: %w", id, info.Status, polls-1, err)
		}
		wait = min(2*wait, max(r.PollMax, wait))
		var out *r53.GetChangeOutput
		err := r.call(ctx, "GetChange", func(ctx context.Context) (err error) {
			out, err = r.client.GetChange(ctx, &r53.GetChangeInput{Id: aws.String(id)})
			return err
		})
		if err != nil {
			return fmt.Errorf("change %s: %w", id, err)
		}
		if out.ChangeInfo != nil {
			info = *out.ChangeInfo
		}
		if info.Status == types.ChangeStatusInsync {
			r.log.DebugContext(ctx, "change in sync", "change", id, "polls", polls)
			return nil
		}
	}
}

var _ endpoint.Router = (*Router)(nil)
var _ endpoint.Lister = (*Router)(nil)
