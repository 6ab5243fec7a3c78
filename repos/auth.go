package repos

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ErrHostKey is returned (wrapped, naming the host and the key's fingerprint) when an SSH server's host key is not
// in Credentials.KnownHosts or differs from the one listed there. Nothing is trusted on first use.
var ErrHostKey = errors.New("SSH host key not trusted")

// knownHostsFile is where a source's Credentials.KnownHosts is written (mode 0600) for the known_hosts parser.
const knownHostsFile = "known_hosts"

// buildAuth turns Credentials into the go-git auth method for the endpoint's protocol, and lists the secret strings
// to scrub from error texts. A nil Credentials yields nil (the URL's credentials, Options.Auth or go-git's defaults).
func buildAuth(ep *transport.Endpoint, c *Credentials, cacheDir string) (transport.AuthMethod, []string, error) {
	if c == nil {
		return nil, nil, nil
	}
	var secrets []string
	for _, s := range []Secret{c.Password, c.BearerToken, c.SSHKey, c.SSHKeyPassphrase} {
		if len(s) >= minSecret {
			secrets = append(secrets, s.Reveal())
		}
	}
	switch ep.Protocol {
	case "http", "https":
		switch {
		case c.SSHKey != "":
			return nil, secrets, fmt.Errorf("credentials: SSHKey is set but the source is %s", ep.Protocol)
		case c.BearerToken != "" && c.Password != "":
			return nil, secrets, fmt.Errorf("credentials: set Password or BearerToken, not both")
		case c.BearerToken != "":
			return &githttp.TokenAuth{Token: c.BearerToken.Reveal()}, secrets, nil
		case c.Username != "" || c.Password != "":
			return &githttp.BasicAuth{Username: c.Username, Password: c.Password.Reveal()}, secrets, nil
		}
		return nil, secrets, nil
	case "ssh":
		if c.SSHKey == "" {
			return nil, secrets, fmt.Errorf("credentials: an SSH source needs SSHKey")
		}
		if len(c.KnownHosts) == 0 {
			return nil, secrets, fmt.Errorf("credentials: an SSH source needs KnownHosts (host keys are never trusted on first use)")
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
			// The parser's messages name no key material, but scrub anyway.
			return nil, secrets, fmt.Errorf("credentials: SSHKey: %w", redact(err, secrets))
		}
		file := filepath.Join(cacheDir, knownHostsFile)
		if err := os.WriteFile(file, c.KnownHosts, 0o600); err != nil {
			return nil, secrets, fmt.Errorf("credentials: KnownHosts: %w", err)
		}
		db, err := gitssh.NewKnownHostsDb(file)
		if err != nil {
			return nil, secrets, fmt.Errorf("credentials: KnownHosts: %w", err)
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
		return keys, secrets, nil
	default:
		return nil, secrets, fmt.Errorf("credentials: do not apply to %s sources", ep.Protocol)
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
