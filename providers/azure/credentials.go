package azure

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/berth-dev/berth/providers/azure/azcred"
	"github.com/berth-dev/berth/schema/redact"
)

// Bounds of what an error quotes: a server's answer, and the credential chain's report (one line per source).
const (
	quoteMax = 400
	chainMax = 900
)

// transport, when set, carries every request of a provider New builds: the credentials' own (Entra ID, the
// managed identity endpoint) and Resource Manager's. Tests point it at in-process handlers and emulators so that
// nothing leaves the machine.
var transport policy.Transporter

var rules = regexp.MustCompile(`-{4,}`)

// chain describes the sources settings.credential names, as they stand in the environment.
func chain(kind string) string {
	set := func(k string) bool { return os.Getenv(k) != "" }
	state := func(ok bool, yes, no string) string {
		if ok {
			return yes
		}
		return no
	}
	onPath := func(cmd string) string {
		if _, err := exec.LookPath(cmd); err == nil {
			return cmd + " on PATH"
		}
		return cmd + " not on PATH"
	}
	env := "environment AZURE_TENANT_ID, AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH (" +
		state(set("AZURE_TENANT_ID") && set("AZURE_CLIENT_ID") && (set("AZURE_CLIENT_SECRET") || set("AZURE_CLIENT_CERTIFICATE_PATH")),
			"set", "not set") + ")"
	wi := "workload identity AZURE_FEDERATED_TOKEN_FILE with AZURE_CLIENT_ID and AZURE_TENANT_ID (" +
		state(set("AZURE_FEDERATED_TOKEN_FILE"), "set", "not set") + ")"
	mi := "managed identity (" + state(set("IDENTITY_ENDPOINT") || set("MSI_ENDPOINT"),
		"IDENTITY_ENDPOINT or MSI_ENDPOINT set", "the instance metadata endpoint 169.254.169.254") + ")"
	cli := "Azure CLI (" + onPath("az") + "; `az login`)"
	azd := "Azure Developer CLI (" + onPath("azd") + "; `azd auth login`)"
	switch kind {
	case "environment":
		return env
	case "workload-identity":
		return wi
	case "managed-identity":
		return mi
	case "cli":
		return cli
	}
	all := env + "; " + wi + "; " + mi + "; " + cli + "; " + azd + "; Azure PowerShell (" + onPath("pwsh") + ")"
	if v := os.Getenv("AZURE_TOKEN_CREDENTIALS"); v != "" {
		all += "; narrowed by AZURE_TOKEN_CREDENTIALS=" + v
	}
	return all
}

const fixNoCredentials = "export AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or " +
	"AZURE_CLIENT_CERTIFICATE_PATH) of a service principal (`az ad sp create-for-rbac`), or run `az login` where berth " +
	"runs, or run berth with a managed identity or an AKS workload identity; settings.credential (default, " +
	"environment, workload-identity, managed-identity, cli) picks one source"

// explain turns a permanent error into one that says what went wrong with the credentials or the permissions and
// how to fix it, quoting the SDK's or Resource Manager's own words (bounded, redacted). Other errors come back as
// they are. The result keeps err's identity.
func (p *Provider) explain(err error) error {
	quote := func(max int) string {
		// the SDK's report spans lines, indented, with rules of dashes: one line of words, then the bound
		words := strings.Fields(rules.ReplaceAllString(redact.Body([]byte(err.Error()), 1<<16), " "))
		return strings.TrimRight(redact.Body([]byte(strings.Join(words, " ")), max), ".")
	}
	var ce *azcred.Error
	if errors.As(err, &ce) {
		var afe *azidentity.AuthenticationFailedError
		if errors.As(err, &afe) {
			return &explained{err: err, msg: fmt.Sprintf("azure target %q: Microsoft Entra ID refused the credentials "+
				"(settings.credential %q): %s. To fix: check the tenant, client ID and secret or certificate (a secret "+
				"expired or copied as its ID instead of its value, a federated credential not trusted for this "+
				"subject); or %s", p.target, p.credKind, quote(chainMax), fixNoCredentials)}
		}
		return &explained{err: err, msg: fmt.Sprintf("azure target %q: no usable Azure credentials (settings.credential "+
			"%q): %s. Tried: %s. To fix: %s", p.target, p.credKind, quote(chainMax), chain(p.credKind), fixNoCredentials)}
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	switch {
	case re.StatusCode == http.StatusForbidden || re.ErrorCode == "AuthorizationFailed":
		return &explained{err: err, msg: fmt.Sprintf("azure target %q: access denied: %s. To fix: assign the identity "+
			"a role that allows Microsoft.ContainerInstance/containerGroups/* (e.g. Contributor) on resource group %s "+
			"(`az role assignment create --assignee <client or object id> --role Contributor --scope "+
			"/subscriptions/%s/resourceGroups/%s`), or use credentials that have one", p.target, quote(quoteMax),
			p.resourceGroup, p.subscription, p.resourceGroup)}
	case re.StatusCode == http.StatusUnauthorized:
		return &explained{err: err, msg: fmt.Sprintf("azure target %q: Resource Manager refused the token "+
			"(settings.credential %q): %s. To fix: check that the credentials belong to the subscription's tenant "+
			"and have not expired (`az login` again); or %s", p.target, p.credKind, quote(quoteMax), fixNoCredentials)}
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
