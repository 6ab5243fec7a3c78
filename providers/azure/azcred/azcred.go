// Package azcred is how berth's Azure clients (the azure provider, the azuredns router) get their cloud and their
// credential: the cloud configuration of a Resource Manager endpoint, the credential chain a `credential` setting
// names, and a wrapper that gives a failure to get a token a type of its own (nothing was sent to Resource Manager,
// and a retry can tell it from a failed call).
//
// Non-goals: explaining the failures (each user words its own fixes), credentials from files or secrets.
package azcred

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Cloud is the cloud configuration of a Resource Manager endpoint: a known sovereign cloud (the public one for ""),
// or the public cloud's directory with the endpoint as Resource Manager.
func Cloud(endpoint string) cloud.Configuration {
	for _, c := range []cloud.Configuration{cloud.AzurePublic, cloud.AzureGovernment, cloud.AzureChina} {
		if rm := c.Services[cloud.ResourceManager]; endpoint == "" || strings.TrimSuffix(rm.Endpoint, "/") == endpoint {
			return c
		}
	}
	c := cloud.AzurePublic
	rm := c.Services[cloud.ResourceManager]
	c.Services = map[cloud.ServiceName]cloud.ServiceConfiguration{
		cloud.ResourceManager: {Audience: rm.Audience, Endpoint: endpoint},
	}
	return c
}

// Chain is the credential a `credential` setting names: "environment", "workload-identity", "managed-identity",
// "cli", or the default chain for anything else. Building it reaches nothing.
func Chain(kind string, copts azcore.ClientOptions) (azcore.TokenCredential, error) {
	switch kind {
	case "environment":
		return azidentity.NewEnvironmentCredential(&azidentity.EnvironmentCredentialOptions{ClientOptions: copts})
	case "workload-identity":
		return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientOptions: copts})
	case "managed-identity":
		return azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: copts})
	case "cli":
		return azidentity.NewAzureCLICredential(nil)
	default:
		return azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: copts})
	}
}

// Wrap makes every failure of cred to get a token an *Error.
func Wrap(cred azcore.TokenCredential) azcore.TokenCredential { return &wrapped{next: cred} }

type wrapped struct{ next azcore.TokenCredential }

func (c *wrapped) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := c.next.GetToken(ctx, o)
	if err != nil {
		return tok, &Error{Err: err}
	}
	return tok, nil
}

// Error is a failure of the credential (or of every credential of the chain) to get a token.
type Error struct{ Err error }

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Transient tells whether a token failure is worth another try: Entra ID or the managed identity endpoint
// answering with throttling or a 5xx, or a token request timing out. No credential available, a wrong secret, an
// unknown client or tenant and a refused federated token are not.
func Transient(err error) bool {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return true // a token request that timed out (the chain reports an unreachable metadata endpoint otherwise)
	}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) && afe.RawResponse != nil {
		s := afe.RawResponse.StatusCode
		return s == http.StatusTooManyRequests || s >= 500
	}
	return false
}
