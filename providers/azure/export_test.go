package azure

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// SetTransport makes providers built by New send every request (credentials and Resource Manager) through t, for
// one test.
func SetTransport(tb testing.TB, t policy.Transporter) {
	old := transport
	transport = t
	tb.Cleanup(func() { transport = old })
}
