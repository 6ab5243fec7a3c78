package repos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// Signature verification (Options.Verify). A Git source checks the commit a Fetch is about to hand out, after the
// fetch and before its tree is written: the commit's gpgsig header must carry an OpenPGP or SSH signature by a
// trusted key over the commit without that header. In head-or-tag mode an annotated tag whose target is the commit
// may carry it instead; the ref listing then includes peeled entries, and only the tags peeling to the head are
// fetched (once: a tag object already here is not fetched again). A refused commit yields an error wrapping
// ErrUnverified, no snapshot, and the same error on every later Fetch until the branch or its tags change.

// sshNamespace is the namespace git uses for SSH signatures of commits and tags.
const sshNamespace = "git"

const (
	pgpBegin = "-----BEGIN PGP SIGNATURE-----"
	sshBegin = "-----BEGIN SSH SIGNATURE-----"
)

// errNotSigned is the reason for an object without a signature.
var errNotSigned = errors.New("not signed")

// verifier checks commit and tag signatures against the keys a source trusts. It is immutable after
// newVerifier, so it is safe for concurrent use.
type verifier struct {
	mode VerifyMode
	pgp  openpgp.EntityList
	ssh  []trustedSSHKey
}

type trustedSSHKey struct {
	key         ssh.PublicKey
	fingerprint string
}

// newVerifier validates p and parses its keys. It returns nil (and no error) when p verifies nothing.
func newVerifier(p *VerifyPolicy) (*verifier, error) {
	if p == nil {
		return nil, nil
	}
	switch p.Mode {
	case VerifyOff:
		return nil, nil
	case "":
		if len(p.OpenPGPKeys) == 0 && len(p.SSHKeys) == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("repos: verify policy: mode is empty but keys are given; set %q or %q",
			VerifyHead, VerifyHeadOrTag)
	case VerifyHead, VerifyHeadOrTag:
	default:
		return nil, fmt.Errorf("repos: verify policy: unknown mode %q (want %q, %q or %q)",
			p.Mode, VerifyOff, VerifyHead, VerifyHeadOrTag)
	}
	if len(p.OpenPGPKeys) == 0 && len(p.SSHKeys) == 0 {
		return nil, fmt.Errorf("repos: verify policy: mode %q needs at least one OpenPGP or SSH key", p.Mode)
	}
	v := &verifier{mode: p.Mode}
	for i, k := range p.OpenPGPKeys {
		ring, err := openpgp.ReadArmoredKeyRing(strings.NewReader(k))
		if err != nil {
			return nil, fmt.Errorf("repos: verify policy: OpenPGPKeys[%d]: not an armored OpenPGP public key: %w", i, err)
		}
		if len(ring) == 0 {
			return nil, fmt.Errorf("repos: verify policy: OpenPGPKeys[%d]: no key in the armored block", i)
		}
		v.pgp = append(v.pgp, ring...)
	}
	for i, k := range p.SSHKeys {
		pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(k))
		if err != nil {
			return nil, fmt.Errorf("repos: verify policy: SSHKeys[%d]: not an SSH public key in authorized_keys form: %w", i, err)
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			return nil, fmt.Errorf("repos: verify policy: SSHKeys[%d]: more than one key; give one key per entry", i)
		}
		v.ssh = append(v.ssh, trustedSSHKey{key: pub, fingerprint: ssh.FingerprintSHA256(pub)})
	}
	return v, nil
}

// check verifies an armored signature (OpenPGP or SSH) over payload and returns the key that made it: an OpenPGP
// key ID ("0x" and 16 hex digits) or an SSH key fingerprint ("SHA256:..."). The error is the reason, meant to
// follow "commit <sha>: " in a message. It never panics, whatever the bytes.
func (v *verifier) check(sig, payload []byte) (string, error) {
	sig = bytes.TrimLeft(sig, " \t\r\n")
	switch {
	case len(sig) == 0:
		return "", errNotSigned
	case bytes.Count(sig, []byte("-----BEGIN ")) > 1:
		// As git and go-git do: several signatures have no single signer to report.
		return "", errors.New("bad signature: more than one signature block")
	case bytes.HasPrefix(sig, []byte(pgpBegin)):
		return v.checkOpenPGP(sig, payload)
	case bytes.HasPrefix(sig, []byte(sshBegin)):
		return v.checkSSH(sig, payload)
	default:
		return "", errors.New("bad signature: neither an OpenPGP nor an SSH signature")
	}
}

func (v *verifier) checkOpenPGP(sig, payload []byte) (string, error) {
	s, _, err := openpgp.VerifyDetachedSignature(v.pgp, bytes.NewReader(payload), armoredBody(sig), nil)
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		if id, ok := pgpIssuer(sig); ok {
			return "", fmt.Errorf("signed by an untrusted OpenPGP key %s", id)
		}
		return "", errors.New("bad signature: no OpenPGP signature packet with an issuer")
	case err != nil:
		return "", fmt.Errorf("bad signature: %w", err)
	case s == nil || s.IssuerKeyId == nil:
		return "", errors.New("bad signature: no issuer")
	}
	return pgpKeyID(*s.IssuerKeyId), nil
}

// armoredBody returns the decoded body of an armored signature block, or a reader that fails.
func armoredBody(sig []byte) io.Reader {
	block, err := armor.Decode(bytes.NewReader(sig))
	if err != nil {
		return errReader{fmt.Errorf("armor: %w", err)}
	}
	if block.Type != openpgp.SignatureType {
		return errReader{fmt.Errorf("armor type %q, want %q", block.Type, openpgp.SignatureType)}
	}
	return block.Body
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// pgpIssuer returns the key ID that made the first signature packet in an armored signature.
func pgpIssuer(sig []byte) (string, bool) {
	block, err := armor.Decode(bytes.NewReader(sig))
	if err != nil {
		return "", false
	}
	packets := packet.NewReader(block.Body)
	for range 16 {
		p, err := packets.Next()
		if err != nil {
			return "", false
		}
		if s, ok := p.(*packet.Signature); ok {
			if s.IssuerKeyId != nil {
				return pgpKeyID(*s.IssuerKeyId), true
			}
			if n := len(s.IssuerFingerprint); n >= 8 {
				return fmt.Sprintf("0x%X", s.IssuerFingerprint[n-8:]), true
			}
		}
	}
	return "", false
}

func pgpKeyID(id uint64) string { return fmt.Sprintf("0x%016X", id) }

func (v *verifier) checkSSH(sig, payload []byte) (string, error) {
	s, err := sshsig.Unarmor(sig)
	if err != nil {
		return "", fmt.Errorf("bad signature: %w", err)
	}
	fp := ssh.FingerprintSHA256(s.PublicKey)
	for _, k := range v.ssh {
		if k.fingerprint != fp {
			continue
		}
		if s.Namespace != sshNamespace {
			return "", fmt.Errorf("bad signature: namespace %q, want %q", s.Namespace, sshNamespace)
		}
		if err := sshsig.Verify(bytes.NewReader(payload), s, k.key, s.HashAlgorithm, sshNamespace); err != nil {
			return "", fmt.Errorf("bad signature: %w", err)
		}
		return fp, nil
	}
	return "", fmt.Errorf("signed by an untrusted SSH key %s", fp)
}

// signed is a commit or tag: its signature and the payload it signs.
type signed interface {
	EncodeWithoutSignature(plumbing.EncodedObject) error
}

func (v *verifier) object(o signed, sig string) (string, error) {
	if strings.TrimSpace(sig) == "" {
		return "", errNotSigned
	}
	payload := &plumbing.MemoryObject{}
	if err := o.EncodeWithoutSignature(payload); err != nil {
		return "", fmt.Errorf("bad signature: encode payload: %w", err)
	}
	r, err := payload.Reader()
	if err != nil {
		return "", fmt.Errorf("bad signature: payload: %w", err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("bad signature: payload: %w", err)
	}
	return v.check([]byte(sig), b)
}

// verifyRevision applies the source's policy to commit c, fetching the annotated tags on c in head-or-tag mode. It
// returns nil when the source verifies nothing, and an error wrapping ErrUnverified when c does not pass.
func (s *gitSource) verifyRevision(ctx context.Context, c *object.Commit) (*Verification, error) {
	v := s.verify
	if v == nil {
		return nil, nil
	}
	short := c.Hash.String()[:12]
	key, err := v.object(c, c.PGPSignature)
	if err == nil {
		s.log.DebugContext(ctx, "repos: commit signature verified", "revision", c.Hash.String(), "key", key)
		return &Verification{Mode: v.mode, Object: "commit", Key: key}, nil
	}
	reasons := []string{err.Error()}
	if v.mode == VerifyHeadOrTag {
		tags, err := s.headTags(ctx, c.Hash)
		if err != nil {
			return nil, err
		}
		for _, t := range tags {
			key, err := v.object(t, t.PGPSignature)
			if err == nil {
				s.log.DebugContext(ctx, "repos: tag signature verified", "revision", c.Hash.String(), "tag", t.Name,
					"key", key)
				return &Verification{Mode: v.mode, Object: "tag " + t.Name, Key: key}, nil
			}
			reasons = append(reasons, fmt.Sprintf("tag %s: %v", t.Name, err))
		}
		if len(tags) == 0 {
			reasons = append(reasons, "no annotated tag points at it")
		}
	}
	reason := strings.Join(reasons, "; ")
	s.log.WarnContext(ctx, "repos: revision not verified", "revision", c.Hash.String(), "reason", reason)
	return nil, fmt.Errorf("repos: %s: commit %s: %w: %s", s.display, short, ErrUnverified, reason)
}

// headTags returns the annotated tags whose target is commit c, per the remote's last ref listing. Tag objects
// not yet in the repository are fetched, one tag ref each; nothing is fetched when all are here already.
func (s *gitSource) headTags(ctx context.Context, c plumbing.Hash) ([]*object.Tag, error) {
	objects := make(map[string]plumbing.Hash) // tag name → tag object, for tags whose peeled target is c
	peeled := make(map[string]bool)
	for _, r := range s.refs {
		name := r.Name().String()
		if !strings.HasPrefix(name, "refs/tags/") || r.Type() != plumbing.HashReference {
			continue
		}
		if base, ok := strings.CutSuffix(name, "^{}"); ok {
			peeled[base] = r.Hash() == c
			continue
		}
		objects[name] = r.Hash()
	}
	names := make([]string, 0, len(objects))
	for name := range objects {
		if peeled[name] { // lightweight tags have no ^{} entry and no signature
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var tags []*object.Tag
	for _, name := range names {
		h := objects[name]
		t, err := s.repo.TagObject(h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			ref := plumbing.ReferenceName(name)
			if _, ferr := s.fetch(ctx, ref, ref); ferr != nil {
				if errors.Is(ferr, ErrBranchNotFound) { // deleted since the listing
					continue
				}
				return nil, ferr
			}
			t, err = s.repo.TagObject(h)
		}
		if err != nil {
			return nil, fmt.Errorf("repos: %s: %s: %w", s.display, name, err)
		}
		if t.TargetType == plumbing.CommitObject && t.Target == c {
			tags = append(tags, t)
		}
	}
	return tags, nil
}
