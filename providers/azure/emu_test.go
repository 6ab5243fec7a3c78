package azure_test

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure"
	"github.com/berth-dev/berth/providers/azure/aciemu"
	"github.com/berth-dev/berth/schema"
)

const (
	testSub      = "00000000-0000-0000-0000-000000000001"
	testRG       = "berth-rg"
	testLocation = "westeurope"
	testTarget   = "aci"
)

// staticToken is a fake credential: the emulator only checks that a bearer token is present.
type staticToken struct{}

func (staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "emulator-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func testTargetFor(emu *aciemu.Server) schema.Target {
	return schema.Target{Name: testTarget, Type: "azure", Settings: map[string]any{
		"subscriptionId": testSub, "resourceGroup": testRG, "location": testLocation,
		"dnsLabelPrefix": "berthtest", "endpoint": emu.URL(),
	}}
}

// newProvider builds a provider on the emulator with millisecond pacing.
func newProvider(t testing.TB, emu *aciemu.Server) *azure.Provider {
	t.Helper()
	p, err := azure.NewWithCredential(testTargetFor(emu), providers.Options{}, staticToken{}, &arm.ClientOptions{
		ClientOptions: policy.ClientOptions{
			Transport: emu.Client(),
			Retry:     policy.RetryOptions{MaxRetries: 3, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.PollInterval = time.Millisecond
	p.RetryBase, p.RetryMax, p.RetryBudget = time.Millisecond, 10*time.Millisecond, 30*time.Second
	p.ReadyTimeout = 30 * time.Second
	return p
}

// referenceWorkload is the golden and conformance workload: an HTTP service on 8080, public, with an HTTP check.
func referenceWorkload(name string) schema.Workload {
	return schema.Workload{
		Name:      name,
		Provider:  testTarget,
		Image:     "ghcr.io/berth-dev/quickstart:1",
		Command:   []string{"/app"},
		Args:      []string{"serve"},
		Env:       map[string]string{"GREETING": "hello", "PORT": "8080"},
		Ports:     []schema.Port{{Port: 8080, Protocol: "tcp", Public: true, HostPort: 8080}},
		Replicas:  2,
		Resources: schema.Resources{CPUMillis: 250, MemoryBytes: 512 << 20},
		Health: &schema.HealthCheck{
			HTTP:     &schema.HTTPCheck{Path: "/healthz", Port: 8080},
			Interval: schema.Duration(5 * time.Second),
			Timeout:  schema.Duration(2 * time.Second),
			Retries:  3,
		},
	}
}
