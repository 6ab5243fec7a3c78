package repos

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/berth-dev/berth/schema/redact"
)

// ErrHostKey is returned (wrapped, naming the host and the key's fingerprint) when an SSH server's host key is not
// in Credentials.KnownHosts or differs from the one listed there. Nothing is trusted on first use.
var ErrHostKey = errors.New("SSH host key not trusted")

// knownHostsFile is where a source's Credentials.KnownHosts is written (mode 0600) for the known_hosts parser.
const knownHostsFile = "known_hosts"

// buildAuth turns Credentials into the go-git auth method for the endpoint's protocol. A nil Credentials yields nil
// (the URL's credentials, Options.Auth or go-git's defaults). The secrets were registered with redact by Open.
func buildAuth(ep *transport.Endpoint, c *Credentials, cacheDir string) (transport.AuthMethod, error) {
	if c == nil {
		return nil, nil
	}
	switch ep.Protocol {
	case "http", "https":
		switch {
		case c.SSHKey != "":
			return nil, fmt.Errorf("credentials: SSHKey is set but the source is %s", ep.Protocol)
		case c.BearerToken != "" && c.Password != "":
			return nil, fmt.Errorf("credentials: set Password or BearerToken, not both")
		case c.BearerToken != "":
			return &githttp.TokenAuth{Token: c.BearerToken.Reveal()}, nil
		case c.Username != "" || c.Password != "":
			return &githttp.BasicAuth{Username: c.Username, Password: c.Password.Reveal()}, nil
		}
		return nil, nil
	case "ssh":
		if c.SSHKey == "" {
			return nil, fmt.Errorf("credentials: an SSH source needs SSHKey")
		}
		if len(c.KnownHosts) == 0 {
			return nil, fmt.Errorf("credentials: an SSH source needs KnownHosts (host keys are never trusted on first use)")
		}
		user := c.Username
		if user == "" {
			user = ep.User
		}
		if user == "" {
			user = "git"
		}
		keys, err := gitssh.NewPublicKeys(user, []byte(c.SSHKey.Reveal()), c.SSHKeyPassphrase.Reveal())
		if err != nil {
			// The parser's messages name no key material, but mask anyway.
			return nil, fmt.Errorf("credentials: SSHKey: %w", redact.Error(err))
		}
		file := filepath.Join(cacheDir, knownHostsFile)
		if err := os.WriteFile(file, c.KnownHosts, 0o600); err != nil {
			return nil, fmt.Errorf("credentials: KnownHosts: %w", err)
		}
		db, err := gitssh.NewKnownHostsDb(file)
		if err != nil {
			return nil, fmt.Errorf("credentials: KnownHosts: %w", err)
		}
		port := ep.Port
		if port == 0 {
			port = 22
		}
		hostPort := net.JoinHostPort(ep.Host, strconv.Itoa(port))
		keys.HostKeyCallback = strictHostKey(db.HostKeyCallback())
		// Offer only the key types KnownHosts lists for this host, so a server with several host keys shows the
		// one we can check.
		keys.HostKeyAlgorithms = db.HostKeyAlgorithms(hostPort)
		return keys, nil
	default:
		return nil, fmt.Errorf("credentials: do not apply to %s sources", ep.Protocol)
	}
}

// strictHostKey turns known_hosts failures into ErrHostKey with the host and the offered key's fingerprint.
func strictHostKey(check ssh.HostKeyCallback) ssh.HostKeyCallback {
	return func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := check(host, remote, key)
		if err == nil {
			return nil
		}
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			if len(ke.Want) == 0 {
				return fmt.Errorf("host %s offered %s key %s, which KnownHosts does not list: %w",
					host, key.Type(), ssh.FingerprintSHA256(key), ErrHostKey)
			}
			return fmt.Errorf("host %s offered %s key %s, which differs from the key in KnownHosts (line %d): %w",
				host, key.Type(), ssh.FingerprintSHA256(key), ke.Want[0].Line, ErrHostKey)
		}
		return fmt.Errorf("host %s: %w: %w", host, ErrHostKey, err)
	}
}

// registerSecrets hands every credential of a source to the redaction choke point (schema/redact), in the forms a
// server or a library may echo: the URL's userinfo, Credentials (password with base64 of "user:password", bearer
// token, SSH private key line by line and its passphrase), the proxy URL's userinfo, and a go-git Options.Auth of a
// known kind. From then on every log line, error, status, plan and store record of the process masks them.
func registerSecrets(location string, opts Options) {
	registerUserinfo(location)
	registerUserinfo(opts.ProxyURL)
	if c := opts.Credentials; c != nil {
		redact.RegisterBasic(c.Username, c.Password.Reveal())
		redact.Register(c.BearerToken.Reveal())
		redact.RegisterPEM(c.SSHKey.Reveal())
		redact.Register(c.SSHKeyPassphrase.Reveal())
	}
	switch a := opts.Auth.(type) {
	case *githttp.BasicAuth:
		registerBasic(a.Username, a.Password)
	case *githttp.TokenAuth:
		redact.Register(a.Token)
	case *gitssh.Password:
		redact.Register(a.Password)
	}
}

// registerUserinfo registers the credentials in a URL's userinfo ("user:password@" or a token as "token@"), also
// when the rest does not parse as a URL. A user name alone counts as a secret for HTTP(S) only: SSH's is "git".
func registerUserinfo(location string) {
	scheme, info, ok := urlUserinfo(location)
	if !ok {
		return
	}
	user, pw, hasPW := strings.Cut(info, ":")
	if u, err := url.PathUnescape(user); err == nil {
		user = u
	}
	if p, err := url.PathUnescape(pw); err == nil {
		pw = p
	}
	switch {
	case hasPW:
		registerBasic(user, pw)
	case strings.HasPrefix(strings.ToLower(scheme), "http") || strings.HasPrefix(strings.ToLower(scheme), "socks"):
		registerBasic(user, "")
	}
}

// registerBasic registers HTTP basic credentials. With no password the user name is the credential (a token passed
// as the user name, sent as base64 of "token:").
func registerBasic(user, password string) {
	if password == "" {
		redact.Register(user)
		redact.Register(user + ":")
		return
	}
	redact.RegisterBasic(user, password)
}
