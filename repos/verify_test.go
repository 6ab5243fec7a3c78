package repos

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// signingKeys are keys made by gpg and ssh-keygen for one test: a trusted and an untrusted one of each kind.
type signingKeys struct {
	pgpID, pgpPub, otherPGPID string // key IDs as gpg prints them (16 hex digits)
	sshKey, sshPub, sshFP     string // private key path, authorized_keys line, SHA256 fingerprint
	otherSSHKey, otherSSHFP   string
}

// needSigningTools skips the test when gpg or ssh-keygen is missing, unless BERTH_REQUIRE_GPG is set.
func needSigningTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"gpg", "gpgconf", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("BERTH_REQUIRE_GPG") != "" {
				t.Fatalf("%s is missing and BERTH_REQUIRE_GPG is set: %v", tool, err)
			}
			t.Skipf("%s is missing (set BERTH_REQUIRE_GPG to fail instead): %v", tool, err)
		}
	}
}

func run(t testing.TB, dir string, stdin []byte, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// newSigningKeys makes the keys in a private GNUPGHOME (short path: gpg-agent's socket lives there) and a temporary
// directory. Call it after hermetic.
func newSigningKeys(t *testing.T) *signingKeys {
	t.Helper()
	needSigningTools(t)
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GNUPGHOME", home)
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--kill", "all").Run()
		_ = os.RemoveAll(home)
	})
	gen := func(email string) string {
		run(t, "", nil, "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
			"Test <"+email+">", "ed25519", "sign", "never")
		for _, line := range strings.Split(run(t, "", nil, "gpg", "--with-colons", "--list-keys", email), "\n") {
			if f := strings.Split(line, ":"); f[0] == "pub" && len(f) > 4 {
				return f[4]
			}
		}
		t.Fatalf("no key ID for %s", email)
		return ""
	}
	k := &signingKeys{pgpID: gen("trusted@example.invalid"), otherPGPID: gen("other@example.invalid")}
	k.pgpPub = run(t, "", nil, "gpg", "--armor", "--export", "trusted@example.invalid")

	dir := t.TempDir()
	sshGen := func(name string) (path, fp string) {
		path = filepath.Join(dir, name)
		run(t, "", nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path)
		return path, strings.Fields(run(t, "", nil, "ssh-keygen", "-lf", path+".pub"))[1]
	}
	k.sshKey, k.sshFP = sshGen("trusted")
	k.otherSSHKey, k.otherSSHFP = sshGen("other")
	pub, err := os.ReadFile(k.sshKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	k.sshPub = string(pub)
	return k
}

// git -c options that make commit -S and tag -s sign with an OpenPGP key ID or an SSH private key file.
func pgpSigner(id string) []string {
	return []string{"-c", "gpg.program=gpg", "-c", "user.signingkey=" + id}
}
func sshSigner(key string) []string {
	return []string{"-c", "gpg.format=ssh", "-c", "user.signingkey=" + key}
}

// commitSigned commits everything in dir, signed when signer is not nil, and returns the SHA.
func commitSigned(t *testing.T, dir string, signer []string, msg string) string {
	t.Helper()
	gitCmd(t, dir, "add", "-A")
	args := append(append([]string{}, signer...), "commit", "-q", "--allow-empty", "-m", msg)
	if signer != nil {
		args = append(args, "-S")
	}
	gitCmd(t, dir, args...)
	return gitCmd(t, dir, "rev-parse", "HEAD")
}

func tagSigned(t *testing.T, dir string, signer []string, name, rev string) {
	t.Helper()
	gitCmd(t, dir, append(append([]string{}, signer...), "tag", "-s", "-m", "release "+name, name, rev)...)
}

// signedOrigin makes a repository on main whose one commit is signed by signer (unsigned when nil).
func signedOrigin(t *testing.T, signer []string) (dir, sha string) {
	t.Helper()
	dir = t.TempDir()
	gitCmd(t, dir, "init", "-q", "-b", "main")
	writeFiles(t, dir, map[string]string{"envs/prod.cue": "prod: 1\n"})
	return dir, commitSigned(t, dir, signer, "first commit")
}

// tamper rewrites the head commit's message, keeping its signature, and points main at the result.
func tamper(t *testing.T, dir string) string {
	t.Helper()
	raw := gitCmd(t, dir, "cat-file", "commit", "HEAD") + "\n"
	forged := strings.Replace(raw, "first commit", "first commit, forged", 1)
	if forged == raw || !strings.Contains(raw, "gpgsig ") {
		t.Fatalf("cannot tamper with:\n%s", raw)
	}
	sha := run(t, dir, []byte(forged), "git", "hash-object", "-t", "commit", "-w", "--stdin")
	gitCmd(t, dir, "update-ref", "refs/heads/main", sha)
	return sha
}

// fetchUnverified fetches and wants ErrUnverified naming the short SHA and the reason.
func fetchUnverified(t *testing.T, src Source, sha, reason string) {
	t.Helper()
	snap, err := src.Fetch(context.Background())
	if !errors.Is(err, ErrUnverified) {
		t.Fatalf("Fetch = %+v, %v; want ErrUnverified", snap, err)
	}
	if snap != nil {
		t.Errorf("Fetch handed out %+v with an error", snap)
	}
	if msg := err.Error(); !strings.Contains(msg, "commit "+sha[:12]) || !strings.Contains(msg, reason) {
		t.Errorf("error %q should name commit %s and say %q", msg, sha[:12], reason)
	}
}

func wantVerified(t *testing.T, snap *Snapshot, sha string, want Verification) {
	t.Helper()
	if snap.Revision != sha {
		t.Fatalf("Revision = %s, want %s", snap.Revision, sha)
	}
	if snap.Verified == nil || *snap.Verified != want {
		t.Fatalf("Verified = %+v, want %+v", snap.Verified, want)
	}
	if got := readFile(t, snap.Dir, "envs/prod.cue"); got != "prod: 1\n" {
		t.Errorf("snapshot content = %q", got)
	}
}

func TestVerifyCommits(t *testing.T) {
	hermetic(t)
	k := newSigningKeys(t)
	trusted := &VerifyPolicy{Mode: VerifyHead, OpenPGPKeys: []string{k.pgpPub}, SSHKeys: []string{k.sshPub}}

	t.Run("trusted SSH", func(t *testing.T) {
		origin, sha := signedOrigin(t, sshSigner(k.sshKey))
		snap := fetch(t, open(t, "file://"+origin, Options{Verify: trusted}))
		wantVerified(t, snap, sha, Verification{Mode: VerifyHead, Object: "commit", Key: k.sshFP})
	})
	t.Run("trusted OpenPGP", func(t *testing.T) {
		origin, sha := signedOrigin(t, pgpSigner(k.pgpID))
		snap := fetch(t, open(t, "file://"+origin, Options{Verify: trusted}))
		wantVerified(t, snap, sha, Verification{Mode: VerifyHead, Object: "commit", Key: "0x" + k.pgpID})
	})
	t.Run("only the kind of key given", func(t *testing.T) {
		origin, sha := signedOrigin(t, pgpSigner(k.pgpID))
		sshOnly := &VerifyPolicy{Mode: VerifyHead, SSHKeys: []string{k.sshPub}}
		fetchUnverified(t, open(t, "file://"+origin, Options{Verify: sshOnly}), sha,
			"signed by an untrusted OpenPGP key 0x"+k.pgpID)
	})
	t.Run("unsigned", func(t *testing.T) {
		origin, sha := signedOrigin(t, nil)
		fetchUnverified(t, open(t, "file://"+origin, Options{Verify: trusted}), sha, ": not signed")
	})
	t.Run("untrusted OpenPGP", func(t *testing.T) {
		origin, sha := signedOrigin(t, pgpSigner(k.otherPGPID))
		fetchUnverified(t, open(t, "file://"+origin, Options{Verify: trusted}), sha,
			"signed by an untrusted OpenPGP key 0x"+k.otherPGPID)
	})
	t.Run("untrusted SSH", func(t *testing.T) {
		origin, sha := signedOrigin(t, sshSigner(k.otherSSHKey))
		fetchUnverified(t, open(t, "file://"+origin, Options{Verify: trusted}), sha,
			"signed by an untrusted SSH key "+k.otherSSHFP)
	})
	t.Run("tampered SSH", func(t *testing.T) {
		origin, _ := signedOrigin(t, sshSigner(k.sshKey))
		sha := tamper(t, origin)
		fetchUnverified(t, open(t, "file://"+origin, Options{Verify: trusted}), sha, "bad signature")
	})
	t.Run("tampered OpenPGP", func(t *testing.T) {
		origin, _ := signedOrigin(t, pgpSigner(k.pgpID))
		sha := tamper(t, origin)
		fetchUnverified(t, open(t, "file://"+origin, Options{Verify: trusted}), sha, "bad signature")
	})
	t.Run("off verifies nothing", func(t *testing.T) {
		origin, sha := signedOrigin(t, nil)
		for _, p := range []*VerifyPolicy{nil, {Mode: VerifyOff, SSHKeys: []string{"not a key"}}} {
			if snap := fetch(t, open(t, "file://"+origin, Options{Verify: p})); snap.Revision != sha || snap.Verified != nil {
				t.Errorf("policy %+v: snapshot %+v, want %s unverified", p, snap, sha)
			}
		}
	})
	t.Run("previous snapshot stays", func(t *testing.T) {
		origin, good := signedOrigin(t, sshSigner(k.sshKey))
		src := open(t, "file://"+origin, Options{Verify: trusted})
		first := fetch(t, src)
		wantVerified(t, first, good, Verification{Mode: VerifyHead, Object: "commit", Key: k.sshFP})

		writeFiles(t, origin, map[string]string{"envs/prod.cue": "prod: 2\n"})
		bad := commitSigned(t, origin, nil, "unsigned change")
		fetchUnverified(t, src, bad, "not signed")
		n := fetches(src)
		fetchUnverified(t, src, bad, "not signed") // the same way, without fetching again
		if fetches(src) != n {
			t.Errorf("fetched again for a commit already refused: %d fetches, want %d", fetches(src), n)
		}
		if got := readFile(t, first.Dir, "envs/prod.cue"); got != "prod: 1\n" {
			t.Errorf("previous snapshot changed: %q", got)
		}
		if _, err := os.Stat(filepath.Join(src.(*gitSource).store.path(bad))); !os.IsNotExist(err) {
			t.Errorf("a tree of the refused commit was written (stat: %v)", err)
		}

		next := commitSigned(t, origin, sshSigner(k.sshKey), "signed fix")
		snap := fetch(t, src)
		if snap.Revision != next || snap.Verified == nil || readFile(t, snap.Dir, "envs/prod.cue") != "prod: 2\n" {
			t.Fatalf("after a signed commit: %+v", snap)
		}
	})
}

func TestVerifyTags(t *testing.T) {
	hermetic(t)
	k := newSigningKeys(t)
	headOrTag := &VerifyPolicy{Mode: VerifyHeadOrTag, OpenPGPKeys: []string{k.pgpPub}, SSHKeys: []string{k.sshPub}}

	t.Run("signed tag on the head", func(t *testing.T) {
		origin, sha := signedOrigin(t, nil)
		tagSigned(t, origin, pgpSigner(k.pgpID), "v1.2", sha)
		gitCmd(t, origin, "tag", "-a", "-m", "unsigned", "v1.1", sha) // sorts first, does not count
		gitCmd(t, origin, "tag", "light", sha)
		snap := fetch(t, open(t, "file://"+origin, Options{Verify: headOrTag}))
		wantVerified(t, snap, sha, Verification{Mode: VerifyHeadOrTag, Object: "tag v1.2", Key: "0x" + k.pgpID})
	})
	t.Run("SSH-signed tag on the head", func(t *testing.T) {
		origin, sha := signedOrigin(t, nil)
		tagSigned(t, origin, sshSigner(k.sshKey), "v2", sha)
		snap := fetch(t, open(t, "file://"+origin, Options{Verify: headOrTag}))
		wantVerified(t, snap, sha, Verification{Mode: VerifyHeadOrTag, Object: "tag v2", Key: k.sshFP})
	})
	t.Run("signed commit needs no tag", func(t *testing.T) {
		origin, sha := signedOrigin(t, sshSigner(k.sshKey))
		src := open(t, "file://"+origin, Options{Verify: headOrTag})
		wantVerified(t, fetch(t, src), sha, Verification{Mode: VerifyHeadOrTag, Object: "commit", Key: k.sshFP})
	})
	t.Run("signed tag on another commit", func(t *testing.T) {
		origin, first := signedOrigin(t, nil)
		tagSigned(t, origin, pgpSigner(k.pgpID), "v1", first)
		head := commitSigned(t, origin, nil, "later")
		src := open(t, "file://"+origin, Options{Verify: headOrTag})
		fetchUnverified(t, src, head, "no annotated tag points at it")
		// Only tags on the head are fetched.
		refs, _ := src.(*gitSource).repo.References()
		_ = refs.ForEach(func(r *plumbing.Reference) error {
			if r.Name().IsTag() {
				t.Errorf("fetched %s, which is not on the head", r.Name())
			}
			return nil
		})
	})
	t.Run("untrusted tag", func(t *testing.T) {
		origin, sha := signedOrigin(t, nil)
		tagSigned(t, origin, sshSigner(k.otherSSHKey), "v3", sha)
		src := open(t, "file://"+origin, Options{Verify: headOrTag})
		fetchUnverified(t, src, sha, "tag v3: signed by an untrusted SSH key "+k.otherSSHFP)
		n := fetches(src)
		fetchUnverified(t, src, sha, "not signed; tag v3: signed by an untrusted SSH key")
		if fetches(src) != n {
			t.Errorf("fetched again for a tag already here: %d fetches, want %d", fetches(src), n)
		}
		// A trusted tag pushed later lets the same commit through.
		tagSigned(t, origin, pgpSigner(k.pgpID), "v3.1", sha)
		wantVerified(t, fetch(t, src), sha, Verification{Mode: VerifyHeadOrTag, Object: "tag v3.1", Key: "0x" + k.pgpID})
	})
	t.Run("mode head ignores tags", func(t *testing.T) {
		origin, sha := signedOrigin(t, nil)
		tagSigned(t, origin, pgpSigner(k.pgpID), "v1", sha)
		head := &VerifyPolicy{Mode: VerifyHead, OpenPGPKeys: []string{k.pgpPub}}
		src := open(t, "file://"+origin, Options{Verify: head})
		fetchUnverified(t, src, sha, "not signed")
		refs, _ := src.(*gitSource).repo.References()
		_ = refs.ForEach(func(r *plumbing.Reference) error {
			if r.Name().IsTag() {
				t.Errorf("mode head fetched %s", r.Name())
			}
			return nil
		})
	})
}

func TestVerifyPolicyAtOpen(t *testing.T) {
	pgpPub, _ := testPGPKey(t, 1)
	sshPub, _ := testSSHKey(t, 1)
	for _, tc := range []struct {
		name string
		p    VerifyPolicy
		want string
	}{
		{"unknown mode", VerifyPolicy{Mode: "always", SSHKeys: []string{sshPub}}, `unknown mode "always"`},
		{"no key", VerifyPolicy{Mode: VerifyHead}, "needs at least one OpenPGP or SSH key"},
		{"empty mode with keys", VerifyPolicy{SSHKeys: []string{sshPub}}, "mode is empty"},
		{"bad OpenPGP key", VerifyPolicy{Mode: VerifyHeadOrTag, OpenPGPKeys: []string{pgpPub, "garbage"}}, "OpenPGPKeys[1]"},
		{"bad SSH key", VerifyPolicy{Mode: VerifyHead, SSHKeys: []string{"ssh-ed25519 AAAA!!"}}, "SSHKeys[0]"},
		{"two SSH keys in one", VerifyPolicy{Mode: VerifyHead, SSHKeys: []string{sshPub + "\n" + sshPub}}, "SSHKeys[0]: more than one key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := Open(context.Background(), "file:///nonexistent/repo", Options{Verify: &tc.p, CacheDir: t.TempDir()})
			if err == nil {
				_ = src.Close()
				t.Fatalf("Open accepted %+v", tc.p)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q should say %q", err, tc.want)
			}
		})
	}
	for _, p := range []VerifyPolicy{
		{Mode: VerifyHead, OpenPGPKeys: []string{pgpPub}}, {Mode: VerifyHeadOrTag, SSHKeys: []string{sshPub}}, {},
	} {
		src, err := Open(context.Background(), "file:///nonexistent/repo", Options{Verify: &p, CacheDir: t.TempDir()})
		if err != nil {
			t.Errorf("Open(%+v): %v", p, err)
			continue
		}
		_ = src.Close()
	}
}

var fuzzPayload = []byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@example.invalid> 1700000000 +0000\n" +
	"committer A <a@example.invalid> 1700000000 +0000\n\nsigned\n")

// testPGPKey makes a fixed OpenPGP key from seed without gpg: its armored public key and the entity to sign with.
func testPGPKey(t testing.TB, seed byte) (string, *openpgp.Entity) {
	t.Helper()
	cfg := &packet.Config{
		Rand: rand.NewChaCha8([32]byte{seed}), Algorithm: packet.PubKeyAlgoEdDSA,
		Time: func() time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) },
	}
	e, err := openpgp.NewEntity("Fuzz", "", "fuzz@example.invalid", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String(), e
}

// testSSHKey makes a fixed SSH key from seed without ssh-keygen: its authorized_keys line and its signer.
func testSSHKey(t testing.TB, seed byte) (string, ssh.Signer) {
	t.Helper()
	signer, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return string(ssh.MarshalAuthorizedKey(signer.PublicKey())), signer
}

func pgpSign(t testing.TB, e *openpgp.Entity, payload []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&buf, e, bytes.NewReader(payload), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sshSign(t testing.TB, s ssh.Signer, payload []byte, namespace string) []byte {
	t.Helper()
	sig, err := sshsig.Sign(bytes.NewReader(payload), s, sshsig.HashSHA512, namespace)
	if err != nil {
		t.Fatal(err)
	}
	return sshsig.Armor(sig)
}

// TestCheckSignature covers the verifier alone with in-process keys.
func TestCheckSignature(t *testing.T) {
	pgpPub, pgpKey := testPGPKey(t, 1)
	sshPub, sshKey := testSSHKey(t, 1)
	_, otherPGP := testPGPKey(t, 2)
	_, otherSSH := testSSHKey(t, 2)
	v, err := newVerifier(&VerifyPolicy{Mode: VerifyHead, OpenPGPKeys: []string{pgpPub}, SSHKeys: []string{sshPub}})
	if err != nil {
		t.Fatal(err)
	}
	pgpID := pgpKeyID(pgpKey.PrimaryKey.KeyId)
	sshFP := ssh.FingerprintSHA256(sshKey.PublicKey())
	other := append(append([]byte{}, fuzzPayload...), '!')
	for _, tc := range []struct {
		name, sig, wantKey, wantErr string
	}{
		{"OpenPGP", string(pgpSign(t, pgpKey, fuzzPayload)), pgpID, ""},
		{"SSH", string(sshSign(t, sshKey, fuzzPayload, "git")), sshFP, ""},
		{"none", "  \n", "", "not signed"},
		{"OpenPGP other payload", string(pgpSign(t, pgpKey, other)), "", "bad signature"},
		{"SSH other payload", string(sshSign(t, sshKey, other, "git")), "", "bad signature"},
		{"SSH other namespace", string(sshSign(t, sshKey, fuzzPayload, "file")), "", "bad signature: namespace"},
		{"SSH untrusted", string(sshSign(t, otherSSH, fuzzPayload, "git")), "",
			"untrusted SSH key " + ssh.FingerprintSHA256(otherSSH.PublicKey())},
		{"OpenPGP untrusted", string(pgpSign(t, otherPGP, fuzzPayload)), "",
			"untrusted OpenPGP key " + pgpKeyID(otherPGP.PrimaryKey.KeyId)},
		{"two signatures", string(sshSign(t, sshKey, fuzzPayload, "git")) + string(pgpSign(t, pgpKey, fuzzPayload)), "",
			"more than one signature"},
		{"x509", "-----BEGIN SIGNED MESSAGE-----\nAAAA\n-----END SIGNED MESSAGE-----\n", "", "neither"},
		{"broken armor", pgpBegin + "\n\n!!!!\n", "", "bad signature"},
		{"broken SSH", sshBegin + "\nAAAA\n-----END SSH SIGNATURE-----\n", "", "bad signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, err := v.check([]byte(tc.sig), fuzzPayload)
			if tc.wantErr == "" {
				if err != nil || key != tc.wantKey {
					t.Fatalf("check = %q, %v; want %q", key, err, tc.wantKey)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("check = %q, %v; want an error saying %q", key, err, tc.wantErr)
			}
		})
	}
}

func FuzzVerifySignature(f *testing.F) {
	pgpPub, pgpKey := testPGPKey(f, 1)
	sshPub, sshKey := testSSHKey(f, 1)
	v, err := newVerifier(&VerifyPolicy{Mode: VerifyHead, OpenPGPKeys: []string{pgpPub}, SSHKeys: []string{sshPub}})
	if err != nil {
		f.Fatal(err)
	}
	trusted := map[string]bool{pgpKeyID(pgpKey.PrimaryKey.KeyId): true, ssh.FingerprintSHA256(sshKey.PublicKey()): true}
	pgpSig, sshSig := pgpSign(f, pgpKey, fuzzPayload), sshSign(f, sshKey, fuzzPayload, "git")
	f.Add(pgpSig, fuzzPayload)
	f.Add(sshSig, fuzzPayload)
	f.Add(pgpSig[:len(pgpSig)/2], fuzzPayload)
	f.Add(sshSig[:len(sshSig)-40], fuzzPayload)
	f.Add(bytes.Replace(sshSig, []byte("A"), []byte("B"), 3), []byte{})
	f.Add([]byte(pgpBegin+"\n\n=AAAA\n-----END PGP SIGNATURE-----\n"), []byte("x"))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, sig, payload []byte) {
		key, err := v.check(sig, payload)
		if err != nil {
			if key != "" {
				t.Fatalf("check returned key %q with error %v", key, err)
			}
			return
		}
		if !trusted[key] {
			t.Fatalf("check accepted a signature by %q, which is not trusted", key)
		}
		if _, err := v.check(sig, append(payload[:len(payload):len(payload)], '\n', 'x')); err == nil {
			t.Fatalf("the signature also verifies another payload")
		}
	})
}

func TestDirectorySourceRefusesVerification(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(context.Background(), dir, Options{Verify: &VerifyPolicy{Mode: VerifyHead, SSHKeys: []string{"ssh-ed25519 AAAA"}}})
	if err == nil || !strings.Contains(err.Error(), "signature verification (mode head) needs a Git source") {
		t.Fatalf("Open = %v", err)
	}
	if _, err := Open(context.Background(), dir, Options{Credentials: &Credentials{Username: "u", Password: "p"}}); err == nil {
		t.Fatal("credentials on a directory source were accepted")
	}
}
