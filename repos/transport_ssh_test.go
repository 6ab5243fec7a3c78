package repos

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const sshdPath = "/usr/sbin/sshd"

// sshKey makes a key pair with ssh-keygen and returns the private key and the public key line.
func sshKey(t *testing.T, dir, name, passphrase string) (private, public string) {
	t.Helper()
	p := filepath.Join(dir, name)
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", name, "-f", p).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	priv, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(p + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return string(priv), strings.TrimSpace(string(pub))
}

type sshServer struct {
	addr, user string
	hostPub    string // public host key line
	authorized []string
}

// knownHosts is a known_hosts line for the server with the given public key line.
func (s *sshServer) knownHosts(pub string) []byte {
	host, port, _ := net.SplitHostPort(s.addr)
	f := strings.Fields(pub)
	return fmt.Appendf(nil, "[%s]:%s %s %s\n", host, port, f[0], f[1])
}

// startSSHD runs OpenSSH's sshd as the current user on a free port of 127.0.0.1, accepting the given public keys.
func startSSHD(t *testing.T, authorized ...string) *sshServer {
	t.Helper()
	if _, err := os.Stat(sshdPath); err != nil {
		if os.Getenv("BERTH_REQUIRE_SSHD") != "" {
			t.Fatalf("BERTH_REQUIRE_SSHD is set but %s is missing: %v", sshdPath, err)
		}
		t.Skipf("%s missing (install openssh-server, or set BERTH_REQUIRE_SSHD to make this a failure)", sshdPath)
	}
	if os.Geteuid() == 0 {
		// sshd started by root insists on its privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("privilege separation dir: %v", err)
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, hostPub := sshKey(t, dir, "host_key", "")
	auth := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(auth, []byte(strings.Join(authorized, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := filepath.Join(dir, "sshd_config")
	conf := strings.Join([]string{
		"ListenAddress 127.0.0.1", "Port " + strconv.Itoa(port), "HostKey " + filepath.Join(dir, "host_key"),
		"AuthorizedKeysFile " + auth, "StrictModes no", "UsePAM no", "PidFile " + filepath.Join(dir, "sshd.pid"),
		"PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
		"PermitRootLogin prohibit-password", "AllowUsers " + u.Username, "LogLevel ERROR",
	}, "\n") + "\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sshdPath, "-f", cfg, "-D", "-e")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("sshd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		<-exited
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(60 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("sshd exited: %s", logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd not listening on %s: %v\n%s", addr, err, logs)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, bounded by the deadline
	}
	return &sshServer{addr: addr, user: u.Username, hostPub: hostPub}
}

func TestGitSSH(t *testing.T) {
	hermetic(t)
	keys := t.TempDir()
	rightKey, rightPub := sshKey(t, keys, "right", "")
	wrongKey, _ := sshKey(t, keys, "wrong", "")
	const passphrase = "pass-phrase-9f86d081"
	lockedKey, lockedPub := sshKey(t, keys, "locked", passphrase)
	_, otherHostPub := sshKey(t, keys, "other_host", "")
	srv := startSSHD(t, rightPub, lockedPub)

	origin, root := bareServed(t)
	url := "ssh://" + srv.user + "@" + srv.addr + filepath.Join(root, "repo.git")
	known := srv.knownHosts(srv.hostPub)

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
			SSHKey: Secret(rightKey), KnownHosts: srv.knownHosts(otherHostPub)}}, secretLines(rightKey)...)
		if !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), "SHA256:") {
			t.Errorf("changed host key: %v, want ErrHostKey naming the fingerprint", err)
		}
	})
	t.Run("host not listed", func(t *testing.T) {
		other := []byte("[127.0.0.1]:1 " + strings.Join(strings.Fields(srv.hostPub)[:2], " ") + "\n")
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
