package gcp

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/credentials"
	"cloud.google.com/go/compute/metadata"
	"google.golang.org/api/googleapi"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema/redact"
)

// quoteMax bounds what an error quotes of the SDK's or the server's own words.
const quoteMax = 400

// cloudPlatformScope is the OAuth scope of application default credentials (Compute's own clients ask for it too).
const cloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"

// onGCE tells whether the metadata server can give credentials. It is the SDK's check (memoized, GCE_METADATA_HOST
// first, else a DNS lookup of metadata.google.internal and a request to 169.254.169.254 of at most a few seconds);
// tests replace it so that nothing leaves the machine.
var onGCE = credentials.OnGCE

// adcFile is gcloud's application default credentials file, where the SDK looks for it.
func adcFile() string {
	home := os.Getenv("HOME")
	if home == "" {
		if h, err := os.UserHomeDir(); err == nil {
			home = h
		}
	}
	return filepath.Join(home, ".config", "gcloud", "application_default_credentials.json")
}

// ErrNoCredentials is the cause of a provider that found no Google credentials at all.
var ErrNoCredentials = errors.New("could not find default credentials (see https://cloud.google.com/docs/authentication/external/set-up-adc)")

const fixNoCredentials = "set the target's credentialsFile to a service account key or workload identity " +
	"federation JSON file, or export GOOGLE_APPLICATION_CREDENTIALS=/path/to/key.json, or run " +
	"`gcloud auth application-default login`, or run berth on Google Cloud with a service account attached"

// defaultCredentials finds application default credentials the way the SDK does (GOOGLE_APPLICATION_CREDENTIALS,
// gcloud's file, the metadata server) and says which sources were looked at when none gives any. who describes
// the identity found, for later errors.
func defaultCredentials(target string) (creds *auth.Credentials, who string, err error) {
	env := os.Getenv("GOOGLE_APPLICATION_CREDENTIALS")
	file := adcFile()
	_, ferr := os.Stat(file)
	switch {
	case env != "":
		who = identity(env, "GOOGLE_APPLICATION_CREDENTIALS")
	case ferr == nil:
		who = identity(file, "gcloud's application default credentials")
	case onGCE():
		who = "the service account of the VM (GCE metadata server)"
	default:
		tried := []string{"the target's settings.credentialsFile (not set)", "GOOGLE_APPLICATION_CREDENTIALS (not set)",
			"gcloud's application default credentials file " + file + " (missing)"}
		if h := os.Getenv("GCE_METADATA_HOST"); h != "" {
			tried = append(tried, "the GCE metadata server at GCE_METADATA_HOST="+h+" (no answer)")
		} else {
			tried = append(tried, "the GCE metadata server (not on Google Cloud: metadata.google.internal did not answer)")
		}
		return nil, "", providers.Permanent(fmt.Errorf("gcp target %q: no Google credentials: %w. Tried, in the order "+
			"of application default credentials: %s. To fix: %s", target, ErrNoCredentials, strings.Join(tried, "; "),
			fixNoCredentials))
	}
	creds, err = credentials.DetectDefault(&credentials.DetectOptions{Scopes: []string{cloudPlatformScope}})
	if err != nil {
		where := "gcloud's application default credentials file " + file
		if env != "" {
			where = "GOOGLE_APPLICATION_CREDENTIALS=" + env
		}
		return nil, "", providers.Permanent(&explained{err: err, msg: fmt.Sprintf("gcp target %q: credentials from %s: "+
			"%s. To fix: point it at a readable JSON credentials file, or %s", target, where,
			redact.Body([]byte(err.Error()), quoteMax), fixNoCredentials)})
	}
	return creds, who, nil
}

// identity names the identity of a credentials file, for errors: a service account's email, or its kind.
func identity(path, from string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "the credentials of " + from + " " + path
	}
	var f struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
	}
	_ = json.Unmarshal(b, &f) // a file that is no JSON is named by its path alone
	switch {
	case f.ClientEmail != "":
		return fmt.Sprintf("service account %s (from %s %s)", f.ClientEmail, from, path)
	case f.Type == "authorized_user":
		return fmt.Sprintf("the gcloud user login (from %s %s)", from, path)
	}
	return fmt.Sprintf("the %s credentials of %s %s", f.Type, from, path)
}

// explain turns a permanent error of a call into one that says what went wrong with the credentials or the
// permissions and how to fix it, quoting the SDK's or Compute's own words (bounded, redacted). Other errors come
// back as they are. The result keeps err's identity.
func (p *Provider) explain(err error) error {
	quote := func() string { return strings.TrimRight(redact.Body([]byte(err.Error()), quoteMax), ".") }
	who := p.who
	if who == "" {
		who = "the identity berth runs as"
	}
	var ae *auth.Error
	if errors.As(err, &ae) {
		return &explained{err: err, msg: fmt.Sprintf("gcp target %q: the token endpoint refused %s: %s. To fix: a "+
			"service account key may have been deleted or disabled (`gcloud iam service-accounts keys list "+
			"--iam-account EMAIL`), a user login may have expired (`gcloud auth application-default login`); or %s",
			p.target, who, quote(), fixNoCredentials)}
	}
	var nd metadata.NotDefinedError
	var me *metadata.Error
	if errors.As(err, &nd) || errors.As(err, &me) {
		return &explained{err: err, msg: fmt.Sprintf("gcp target %q: the GCE metadata server gives no token for %s: "+
			"%s. To fix: attach a service account to the VM with the cloud-platform scope (`gcloud compute instances "+
			"set-service-account VM --service-account EMAIL --scopes cloud-platform`), or %s", p.target, who, quote(),
			fixNoCredentials)}
	}
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		return err
	}
	switch {
	case ge.Code == 401:
		return &explained{err: err, msg: fmt.Sprintf("gcp target %q: Compute Engine refused the access token of %s: "+
			"%s. To fix: check the credentials (expired, revoked, or for another universe), or %s", p.target, who,
			quote(), fixNoCredentials)}
	case ge.Code == 403 && (hasReason(ge, "accessNotConfigured") || hasReason(ge, "SERVICE_DISABLED")):
		return &explained{err: err, msg: fmt.Sprintf("gcp target %q: the Compute Engine API is not enabled: %s. To "+
			"fix: `gcloud services enable compute.googleapis.com --project %s`", p.target, quote(), p.project)}
	case ge.Code == 403:
		return &explained{err: err, msg: fmt.Sprintf("gcp target %q: permission denied to %s: %s. To fix: grant it "+
			"roles/compute.instanceAdmin.v1 and roles/iam.serviceAccountUser on project %s, plus "+
			"roles/compute.loadBalancerAdmin and roles/compute.securityAdmin for health checks, load balancers and "+
			"firewall rules (`gcloud projects add-iam-policy-binding %s --member=serviceAccount:EMAIL "+
			"--role=roles/compute.instanceAdmin.v1`, and so for each role), or "+
			"use credentials that have them", p.target, who, quote(), p.project, p.project)}
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
