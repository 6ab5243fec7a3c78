package kubetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Version is the Kubernetes version hack/kube.sh builds by default; the cache directory is named after it.
const Version = "v1.34.2"

// StartTimeout bounds the start of etcd and of kube-apiserver (until /readyz answers).
const StartTimeout = 3 * time.Minute

// Cluster is a running etcd + kube-apiserver pair.
type Cluster struct {
	// Config authenticates as an admin (group system:masters) over TLS to 127.0.0.1.
	Config *rest.Config
	// Kubeconfig is a kubeconfig file path for the same user (context "kubetest"), for a target's kubeconfig
	// setting.
	Kubeconfig string
	// Client is a clientset on Config.
	Client kubernetes.Interface
	// URL is the apiserver's https URL.
	URL string

	dir   string
	procs []proc
	logs  []*bytes.Buffer
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

var (
	shared    *Cluster
	sharedErr error
	once      sync.Once
	mu        sync.Mutex
)

// BinDir returns the directory holding kube-apiserver and etcd: $KUBE_BIN_DIR, else hack/kube.sh's cache
// ($BERTH_KUBE_CACHE or ~/.cache/berth/kube, then <Version>/bin); "" when neither has both binaries.
func BinDir() string {
	var dirs []string
	if d := os.Getenv("KUBE_BIN_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	root := os.Getenv("BERTH_KUBE_CACHE")
	if root == "" {
		if home, err := os.UserHomeDir(); err == nil {
			root = filepath.Join(home, ".cache", "berth", "kube")
		}
	}
	if root != "" {
		dirs = append(dirs, filepath.Join(root, Version, "bin"))
	}
	for _, d := range dirs {
		if isExec(filepath.Join(d, "kube-apiserver")) && isExec(filepath.Join(d, "etcd")) {
			return d
		}
	}
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Start returns the package's shared cluster, starting it on first use. It skips t when the binaries are not found
// (see BinDir) and fails it instead when BERTH_REQUIRE_KUBE is set. Call Stop from TestMain after m.Run: the
// cluster outlives single tests.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin := BinDir()
	if bin == "" {
		msg := "kube-apiserver and etcd not found: run hack/kube.sh and set KUBE_BIN_DIR"
		if os.Getenv("BERTH_REQUIRE_KUBE") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	once.Do(func() {
		c, err := startCluster(bin)
		mu.Lock()
		shared, sharedErr = c, err
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	if sharedErr != nil {
		t.Fatalf("kubetest: %v", sharedErr)
	}
	if shared == nil {
		t.Fatal("kubetest: the shared cluster was stopped")
	}
	return shared
}

// Stop stops the shared cluster, if one was started, and removes its files. TestMain calls it after m.Run.
func Stop() {
	mu.Lock()
	c := shared
	shared = nil
	mu.Unlock()
	if c != nil {
		c.stop()
	}
}

// Main runs the tests of a package that uses Start and stops the cluster afterwards:
//
//	func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

func startCluster(bin string) (c *Cluster, err error) {
	dir, err := os.MkdirTemp("", "berth-kubetest-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{dir: dir}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, c.logTail())
			c.stop()
			c = nil
		}
	}()
	ports, err := freePorts(3)
	if err != nil {
		return c, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	if err := c.run(filepath.Join(bin, "etcd"),
		"--name=kubetest", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL, "--unsafe-no-fsync=true", "--log-level=warn",
	); err != nil {
		return c, err
	}

	caPEM, certPEM, keyPEM, err := servingCert()
	if err != nil {
		return c, err
	}
	saKey, saPub, err := keyPair()
	if err != nil {
		return c, err
	}
	token := randomHex(16)
	files := map[string][]byte{
		"serving.crt": certPEM, "serving.key": keyPEM, "sa.key": saKey, "sa.pub": saPub,
		"tokens.csv": []byte(token + ",admin,admin-uid,system:masters\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return c, err
		}
	}
	c.URL = "https://127.0.0.1:" + strconv.Itoa(ports[2])
	if err := c.run(filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[2]),
		"--tls-cert-file="+filepath.Join(dir, "serving.crt"), "--tls-private-key-file="+filepath.Join(dir, "serving.key"),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		// No controller-manager creates the "default" ServiceAccount of namespaces, which that plugin requires.
		"--disable-admission-plugins=ServiceAccount",
		"--enable-priority-and-fairness=false",
		"--v=0",
	); err != nil {
		return c, err
	}

	c.Config = &rest.Config{
		Host: c.URL, BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM},
		QPS:             200, Burst: 400,
	}
	if err := c.waitReady(caPEM, token); err != nil {
		return c, err
	}
	c.Client, err = kubernetes.NewForConfig(c.Config)
	if err != nil {
		return c, err
	}
	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: c.URL, CertificateAuthorityData: caPEM}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "admin"}
	kc.CurrentContext = "kubetest"
	if err := clientcmd.WriteToFile(*kc, c.Kubeconfig); err != nil {
		return c, err
	}
	return c, nil
}

// run starts a process with its output kept for error reports; it runs until stop.
func (c *Cluster) run(path string, args ...string) error {
	cmd := exec.Command(path, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &syncWriter{w: &buf}, &syncWriter{w: &buf}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", filepath.Base(path), err)
	}
	p := proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	c.procs = append(c.procs, p)
	c.logs = append(c.logs, &buf)
	return nil
}

// waitReady polls /readyz until it answers 200 or StartTimeout passes.
func (c *Cluster) waitReady(caPEM []byte, token string) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	last := "no answer yet"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := hc.Do(req); err != nil {
			last = err.Error()
		} else {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		}
		for _, p := range c.procs {
			select {
			case <-p.done:
				return fmt.Errorf("%s exited: %v", filepath.Base(p.cmd.Path), p.cmd.ProcessState)
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready after %s: %s", StartTimeout, last)
		case <-tick.C:
		}
	}
}

// stop ends the processes (apiserver first), waits for them and removes the files.
func (c *Cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second): // a stuck process is killed rather than waited on forever
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	c.procs = nil
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

func (c *Cluster) logTail() string {
	var out []byte
	for _, b := range c.logs {
		s := b.Bytes()
		if len(s) > 4000 {
			s = s[len(s)-4000:]
		}
		out = append(out, s...)
	}
	return string(out)
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w.Len() > 1<<20 { // keep memory bounded: only the tail matters for reports
		s.w.Reset()
	}
	return s.w.Write(p)
}

// freePorts finds n free TCP ports on 127.0.0.1 (held open together so they differ).
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// servingCert makes a CA and a serving certificate for 127.0.0.1 and localhost signed by it.
func servingCert() (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubetest-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// keyPair makes the service-account signing key pair.
func keyPair() (keyPEM, pubPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(errors.Join(errors.New("kubetest: no randomness"), err))
	}
	return hex.EncodeToString(b)
}
