package repos

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/repos/gittest"
)

func TestGitSSH(t *testing.T) {
	hermetic(t)
	keys := t.TempDir()
	rightKey, rightPub := gittest.SSHKey(t, keys, "right", "")
	wrongKey, _ := gittest.SSHKey(t, keys, "wrong", "")
	const passphrase = "pass-phrase-9f86d081"
	lockedKey, lockedPub := gittest.SSHKey(t, keys, "locked", passphrase)
	_, otherHostPub := gittest.SSHKey(t, keys, "other_host", "")
	srv := gittest.StartSSHD(t, rightPub, lockedPub)

	origin, root := bareServed(t)
	url := "ssh://" + srv.User + "@" + srv.Addr + filepath.Join(root, "repo.git")
	known := srv.KnownHosts(srv.HostPub)

	t.Run("right key", func(t *testing.T) {
		fetchOverWire(t, origin, url, Options{Credentials: &Credentials{SSHKey: Secret(rightKey), KnownHosts: known}})
	})
	t.Run("passphrase-protected key", func(t *testing.T) {
		snap := fetch(t, open(t, url, Options{Credentials: &Credentials{
			SSHKey: Secret(lockedKey), SSHKeyPassphrase: passphrase, KnownHosts: known}}))
		if want := gitCmd(t, origin, "rev-parse", "main"); snap.Revision != want {
			t.Errorf("revision %s, want %s", snap.Revision, want)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		err := fetchFails(t, url, Options{Credentials: &Credentials{SSHKey: Secret(wrongKey), KnownHosts: known}},
			secretLines(wrongKey)...)
		if !strings.Contains(err.Error(), "unable to authenticate") || errors.Is(err, ErrHostKey) {
			t.Errorf("wrong key: %v, want an authentication error", err)
		}
	})
	t.Run("unknown host key", func(t *testing.T) {
		err := fetchFails(t, url, Options{Credentials: &Credentials{
			SSHKey: Secret(rightKey), KnownHosts: srv.KnownHosts(otherHostPub)}}, secretLines(rightKey)...)
		if !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), "SHA256:") {
			t.Errorf("changed host key: %v, want ErrHostKey naming the fingerprint", err)
		}
	})
	t.Run("host not listed", func(t *testing.T) {
		other := []byte("[127.0.0.1]:1 " + strings.Join(strings.Fields(srv.HostPub)[:2], " ") + "\n")
		err := fetchFails(t, url, Options{Credentials: &Credentials{SSHKey: Secret(rightKey), KnownHosts: other}})
		if !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), "does not list") {
			t.Errorf("unlisted host: %v, want ErrHostKey", err)
		}
	})
	t.Run("wrong passphrase", func(t *testing.T) {
		_, err := Open(t.Context(), url, Options{Credentials: &Credentials{
			SSHKey: Secret(lockedKey), SSHKeyPassphrase: "not-the-passphrase", KnownHosts: known}})
		if err == nil || strings.Contains(err.Error(), "not-the-passphrase") || !strings.Contains(err.Error(), "SSHKey") {
			t.Errorf("wrong passphrase: %v, want an SSHKey error without the passphrase", err)
		}
	})
}

// secretLines returns the base64 body lines of a private key, each a secret that must not leak.
func secretLines(key string) []string {
	var out []string
	for _, l := range strings.Split(key, "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}
