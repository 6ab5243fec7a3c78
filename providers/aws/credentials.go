package aws

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go"

	"github.com/berth-dev/berth/schema/redact"
)

// quoteMax bounds what an error quotes of the SDK's or the server's own words.
const quoteMax = 400

// credentials wraps the SDK's credential chain (already cached) so that a failure to obtain credentials keeps a
// type of its own: classify tells it from a failed call, and explain says which sources were looked at. It also
// remembers where the last credentials came from, for the message when ECS refuses them.
type credentials struct {
	next   aws.CredentialsProvider
	source atomic.Value // string: aws.Credentials.Source of the last retrieval
}

func (c *credentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	v, err := c.next.Retrieve(ctx)
	if err != nil {
		// The attempt's own deadline, not a source's internal timeout (instance metadata answers within a
		// second or not at all): a slow endpoint, worth another try.
		return v, &credentialsError{err: err, attemptExpired: ctx.Err() != nil}
	}
	c.source.Store(v.Source)
	return v, nil
}

// ProviderSources passes the chain's sources on to the SDK's user agent.
func (c *credentials) ProviderSources() []aws.CredentialSource {
	if s, ok := c.next.(aws.CredentialProviderSource); ok {
		return s.ProviderSources()
	}
	return nil
}

func (c *credentials) lastSource() string {
	s, _ := c.source.Load().(string)
	return s
}

// credentialsError is a failure of the credential chain itself: nothing was sent to ECS.
type credentialsError struct {
	err error
	// attemptExpired: the call's context ended while the chain was working.
	attemptExpired bool
}

func (e *credentialsError) Error() string { return e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// transient tells whether a failure of the chain is worth another try: an STS, SSO or container credentials
// endpoint that answered with throttling or a 5xx, or that had not answered when the call's timeout ended.
// Everything else (no source configured, no EC2 instance role, an unreachable instance metadata service, a refused
// role or token) is permanent: no retry brings credentials that are not there.
func (e *credentialsError) transient() bool { return e.attemptExpired || transientCredentials(e.err) }

func transientCredentials(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && throttling[ae.ErrorCode()] {
		return true
	}
	var re interface{ HTTPStatusCode() int } // awshttp.ResponseError, the container endpoint's own error
	if errors.As(err, &re) {
		code := re.HTTPStatusCode()
		return code == 429 || code >= 500
	}
	return false
}

var throttling = map[string]bool{"ThrottlingException": true, "Throttling": true, "TooManyRequestsException": true,
	"RequestLimitExceeded": true, "IDPCommunicationError": true, "ServiceUnavailable": true, "InternalFailure": true}

// refusedCredentials are the codes of ECS refusing the credentials it was sent (not the permissions they carry).
var refusedCredentials = map[string]bool{"UnrecognizedClientException": true, "InvalidSignatureException": true,
	"ExpiredTokenException": true, "MissingAuthenticationTokenException": true, "InvalidClientTokenId": true,
	"SignatureDoesNotMatch": true}

// chain describes the SDK's default credential chain as it stands in the environment: each source in the SDK's
// order, and what was found for it. profile is the target's settings.profile ("" when not set).
func chain(profile string) string {
	set := func(k string) bool { return os.Getenv(k) != "" }
	var parts []string
	env := "environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
	switch {
	case profile != "":
		env += " (skipped: the target names a profile, which comes first)"
	case (set("AWS_ACCESS_KEY_ID") || set("AWS_ACCESS_KEY")) && (set("AWS_SECRET_ACCESS_KEY") || set("AWS_SECRET_KEY")):
		env += " (set)"
	case set("AWS_ACCESS_KEY_ID") || set("AWS_ACCESS_KEY"):
		env += " (AWS_SECRET_ACCESS_KEY not set)"
	default:
		env += " (not set)"
	}
	parts = append(parts, env)

	name, from := profile, "the target's settings.profile"
	if name == "" {
		name, from = os.Getenv("AWS_PROFILE"), "AWS_PROFILE"
	}
	if name == "" {
		name, from = "default", "none named"
	}
	files := []string{sharedFile("AWS_SHARED_CREDENTIALS_FILE", config.DefaultSharedCredentialsFilename()),
		sharedFile("AWS_CONFIG_FILE", config.DefaultSharedConfigFilename())}
	for i, f := range files {
		if _, err := os.Stat(f); err != nil {
			files[i] = f + " (missing)"
		}
	}
	parts = append(parts, fmt.Sprintf("shared files %s, profile %q (%s)", strings.Join(files, " and "), name, from))

	web := "web identity AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN"
	if set("AWS_WEB_IDENTITY_TOKEN_FILE") {
		web += " (set)"
	} else {
		web += " (not set)"
	}
	parts = append(parts, web)

	ctr := "ECS container credentials AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI"
	if set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || set("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
		ctr += " (set)"
	} else {
		ctr += " (not set)"
	}
	parts = append(parts, ctr)

	imds := "EC2 instance metadata"
	if strings.EqualFold(os.Getenv("AWS_EC2_METADATA_DISABLED"), "true") {
		imds += " (disabled by AWS_EC2_METADATA_DISABLED=true)"
	} else {
		imds += " (enabled)"
	}
	return strings.Join(append(parts, imds), "; ")
}

func sharedFile(env, def string) string {
	if f := os.Getenv(env); f != "" {
		return f
	}
	if def == "" { // no home directory
		return filepath.Join("~", ".aws", strings.ToLower(strings.TrimPrefix(env, "AWS_")))
	}
	return def
}

const fixNoCredentials = "export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for " +
	"temporary keys), or write a profile with `aws configure --profile NAME` (`aws sso login --profile NAME` for " +
	"SSO) and name it in the target's settings.profile or AWS_PROFILE, or run berth with an IAM role (ECS task " +
	"role, EKS web identity, EC2 instance profile)"

// explain turns a permanent error of a call into one that says what went wrong with the credentials or
// permissions and how to fix it, quoting the SDK's or ECS's own words (bounded, redacted). Other errors come back
// as they are. The result keeps err's identity.
// elbActions are the Elastic Load Balancing v2 actions berth uses for public ports and HTTP/TCP checks.
const elbActions = "elasticloadbalancing:DescribeLoadBalancers, CreateLoadBalancer, DeleteLoadBalancer, " +
	"DescribeTargetGroups, CreateTargetGroup, ModifyTargetGroup, DeleteTargetGroup, DescribeListeners, CreateListener, " +
	"DeleteListener, DescribeTargetHealth, DescribeTags, AddTags (and iam:CreateServiceLinkedRole for " +
	"elasticloadbalancing.amazonaws.com on the account's first load balancer)"

// explainELB is explain for an ELBv2 call: a denied access names the ELBv2 actions berth needs.
func (p *Provider) explainELB(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "AccessDenied" || ae.ErrorCode() == "AccessDeniedException") {
		quote := strings.TrimRight(redact.Body([]byte(err.Error()), quoteMax), ".")
		return &explained{err: err, msg: fmt.Sprintf("aws target %q: access denied: %s. To fix: allow the IAM identity "+
			"%s, or use a profile or role that has them", p.target, quote, elbActions)}
	}
	return p.explain(err)
}

func (p *Provider) explain(err error) error {
	if err == nil {
		return nil
	}
	quote := func() string { return strings.TrimRight(redact.Body([]byte(err.Error()), quoteMax), ".") }
	var ce *credentialsError
	if errors.As(err, &ce) {
		if ce.transient() {
			return err
		}
		return &explained{err: err, msg: fmt.Sprintf("aws target %q: no usable AWS credentials: %s. Tried, in the SDK's "+
			"order: %s. To fix: %s", p.target, quote(), chain(p.set.profile), fixNoCredentials)}
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err
	}
	from := ""
	if p.creds != nil {
		if s := p.creds.lastSource(); s != "" {
			from = " (from " + s + ")"
		}
	}
	switch code := ae.ErrorCode(); {
	case code == "AccessDeniedException" || code == "AccessDenied":
		return &explained{err: err, msg: fmt.Sprintf("aws target %q: access denied: %s. To fix: allow the IAM "+
			"identity ECS names%s the ECS actions berth uses (ecs:ListServices, DescribeServices, CreateService, "+
			"UpdateService, DeleteService, RegisterTaskDefinition, DescribeTaskDefinition, DeregisterTaskDefinition, "+
			"ListTaskDefinitions, ListTaskDefinitionFamilies, ListTasks, DescribeTasks, TagResource, "+
			"ListTagsForResource; iam:PassRole on the task roles; ec2:DescribeSubnets for the subnets' VPC when the "+
			"target has no vpcId; "+elbActions+" for public ports) on cluster %q, or use a profile or role that has "+
			"them", p.target, quote(), from, p.set.cluster)}
	case refusedCredentials[code]:
		return &explained{err: err, msg: fmt.Sprintf("aws target %q: ECS refused the credentials%s: %s. To fix: "+
			"check the access key ID and secret key (a key deleted or rotated in IAM, a secret copied wrong, a "+
			"session token expired or left over from another session: refresh it, e.g. `aws sso login`), or provide "+
			"others: %s",
			p.target, from, quote(), fixNoCredentials)}
	}
	return err
}

// explained is an error with a message for people; it unwraps to the error it explains.
type explained struct {
	err error
	msg string
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

// explainConfig says how to fix an error of the SDK's configuration loading at New.
func explainConfig(err error) string {
	var pe config.SharedConfigProfileNotExistError
	if errors.As(err, &pe) {
		return fmt.Sprintf("profile %q is in none of %s: create it with `aws configure --profile %s`, "+
			"or fix the target's settings.profile (or AWS_PROFILE)", pe.Profile, strings.Join(pe.Filename, ", "), pe.Profile)
	}
	return "check the shared config and credentials files (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE) and " +
		"the AWS_* environment variables"
}
