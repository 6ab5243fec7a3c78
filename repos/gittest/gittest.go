// Package gittest starts real Git servers on 127.0.0.1 for tests: git http-backend (served in-process through
// net/http/cgi), git daemon, and OpenSSH's sshd run as the current user with its own configuration. Every server
// stops when the test ends. Tests that need one skip when its program is missing, unless the matching
// BERTH_REQUIRE_* variable is set (CI sets them), in which case they fail.
package gittest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SSHDPath is where Debian's openssh-server installs sshd.
const SSHDPath = "/usr/sbin/sshd"

// SSHKey makes an ed25519 key pair with ssh-keygen in dir and returns the private key (PEM text) and the public
// key line.
func SSHKey(t testing.TB, dir, name, passphrase string) (private, public string) {
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

// SSHServer is a running sshd.
type SSHServer struct {
	Addr, User string
	// HostPub is the server's public host key line.
	HostPub string
}

// KnownHosts is a known_hosts line for the server, claiming the given public key line as its host key (pass
// HostPub for the right one).
func (s *SSHServer) KnownHosts(pub string) []byte {
	host, port, _ := net.SplitHostPort(s.Addr)
	f := strings.Fields(pub)
	return fmt.Appendf(nil, "[%s]:%s %s %s\n", host, port, f[0], f[1])
}

// URL is the ssh:// URL of the repository at the absolute path on the server's machine.
func (s *SSHServer) URL(path string) string { return "ssh://" + s.User + "@" + s.Addr + path }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// StartSSHD runs OpenSSH's sshd as the current user on a free port of 127.0.0.1, accepting the given public keys.
func StartSSHD(t testing.TB, authorized ...string) *SSHServer {
	t.Helper()
	if _, err := os.Stat(SSHDPath); err != nil {
		if os.Getenv("BERTH_REQUIRE_SSHD") != "" {
			t.Fatalf("BERTH_REQUIRE_SSHD is set but %s is missing: %v", SSHDPath, err)
		}
		t.Skipf("%s missing (install openssh-server, or set BERTH_REQUIRE_SSHD to make this a failure)", SSHDPath)
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
	_, hostPub := SSHKey(t, dir, "host_key", "")
	auth := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(auth, []byte(strings.Join(authorized, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
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
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	start(t, "sshd", addr, exec.Command(SSHDPath, "-f", cfg, "-D", "-e"))
	return &SSHServer{Addr: addr, User: u.Username, HostPub: hostPub}
}

// Daemon runs git daemon exporting every repository under root on a free port of 127.0.0.1 and returns its
// address; repositories are then at git://ADDR/<path under root>.
func Daemon(t testing.TB, root string) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(execPath(t), "git-daemon")); err != nil {
		t.Skipf("git daemon unavailable: %v", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
	_, port, _ := net.SplitHostPort(addr)
	start(t, "git daemon", addr, exec.Command("git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
		"--port="+port, "--base-path="+root, root))
	return addr
}

// HTTPBackend serves every repository under root with git http-backend (smart HTTP), in-process.
func HTTPBackend(t testing.TB, root string) http.Handler {
	t.Helper()
	return &cgi.Handler{
		Path: filepath.Join(execPath(t), "git-http-backend"),
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=/dev/null", "HOME=" + os.Getenv("HOME")},
	}
}

// PullRef points ref (e.g. "refs/pull/7/head") of the bare repository bare at sha with git update-ref, as a forge
// does when a pull request from a branch of the same repository is opened or pushed to. Served by HTTPBackend,
// Daemon and file://: git advertises refs/pull and refs/merge-requests (uploadpack.hideRefs is empty by default).
func PullRef(t testing.TB, bare, ref, sha string) {
	t.Helper()
	gitRun(t, "", "--git-dir="+bare, "update-ref", ref, sha)
}

// Fork makes a fork of the bare repository base: a bare clone of it in a new temporary directory, returned.
func Fork(t testing.TB, base string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fork.git")
	gitRun(t, "", "clone", "-q", "--bare", "--no-local", base, dir)
	return dir
}

// PushPull copies rev (a commit-ish) of the repository from (a fork, bare or not) into ref of the bare repository
// base, forced, as GitHub does for a pull request opened from a fork, and returns the commit's SHA.
func PushPull(t testing.TB, from, rev, base, ref string) string {
	t.Helper()
	sha := gitRun(t, from, "rev-parse", "--verify", rev+"^{commit}")
	gitRun(t, from, "push", "-q", "--force", base, sha+":"+ref)
	return sha
}

// gitRun runs git in dir (the current directory when empty) and returns its trimmed output.
func gitRun(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// BasicAuth lets through only requests with the given user and password.
func BasicAuth(user, password string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Echo answers with status and an error page quoting the request back, as some Git servers and proxies do: the
// URL, every header as sent (Authorization included), the Authorization header URL-encoded, and basic credentials
// decoded, between terminal escapes and CR/LF, followed by a few KiB of padding. Tests use it to check that what
// berth quotes of a server's answer is bounded, free of control characters and free of credentials.
func Echo(w http.ResponseWriter, r *http.Request, status int) {
	var b strings.Builder
	fmt.Fprintf(&b, "\x1b[31m<html><title>%d %s</title>\r\n", status, http.StatusText(status))
	fmt.Fprintf(&b, "You asked for %s %s (host %s)\r\n", r.Method, r.URL.String(), r.Host)
	auth := r.Header.Get("Authorization")
	fmt.Fprintf(&b, "Authorization: %s\r\nAuthorization (escaped): %s\r\n", auth, url.QueryEscape(auth))
	if u, p, ok := r.BasicAuth(); ok {
		fmt.Fprintf(&b, "You are %s with password %s\x07\r\n", u, p)
	}
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range r.Header[k] {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString(strings.Repeat("<p>padding</p>\n", 300))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
	}
	w.WriteHeader(status)
	io.WriteString(w, b.String())
}

// BasicAuthEcho is BasicAuth whose refusals quote the request back (Echo): 401 without credentials, 403 with wrong
// ones.
func BasicAuthEcho(user, password string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		switch {
		case r.Header.Get("Authorization") == "":
			Echo(w, r, http.StatusUnauthorized)
		case !ok || u != user || p != password:
			Echo(w, r, http.StatusForbidden)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func execPath(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// start runs cmd in its own process group until the test ends and waits until addr accepts connections.
func start(t testing.TB, name, addr string, cmd *exec.Cmd) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		<-exited
	})
	for deadline := time.Now().Add(60 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("%s exited: %s", name, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s: %v\n%s", name, addr, err, logs)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, bounded by the deadline
	}
}
