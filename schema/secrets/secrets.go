package secrets

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"filippo.io/age"

	"github.com/berth-dev/berth/schema"
	"github.com/berth-dev/berth/schema/redact"
)

// Causes of a failed Decrypt, wrapped by *Error: test them with errors.Is.
var (
	// ErrNoIdentity: none of the controller's age identities opens the file's data key (a wrong or missing key).
	ErrNoIdentity = errors.New("no age identity of this controller can decrypt the file")
	// ErrIntegrity: the MAC or a value's authentication tag does not match (the file was edited without sops,
	// merged by hand, or corrupted).
	ErrIntegrity = errors.New("integrity check failed")
	// ErrKeyNotFound: the decrypted document has nothing at the secret's key.
	ErrKeyNotFound = errors.New("key not found")
	// ErrFileNotFound: the SOPS file is not in the snapshot.
	ErrFileNotFound = errors.New("file not found")
	// ErrNotSOPS: the file is not a SOPS-encrypted document (no sops metadata, or not YAML or JSON).
	ErrNotSOPS = errors.New("not a SOPS file")
	// ErrUnsupported: a SOPS feature this package does not implement (see the package documentation).
	ErrUnsupported = errors.New("unsupported SOPS file")
	// ErrNotSOPSSecret: the secret is a reference to a store, not a SOPS file; it is the provider's to resolve.
	ErrNotSOPSSecret = errors.New("not a SOPS secret")
)

// Error is a secret that cannot be decrypted: which secret, where it was declared, which file, and why (Err wraps
// one of the Err* causes). It never holds a decrypted value or key material.
type Error struct {
	Secret string
	// Pos is where the secret was declared (schema.Secret.Pos).
	Pos schema.Pos
	// File is the SOPS file, relative to the repository's tree.
	File string
	Err  error
}

func (e *Error) Error() string {
	if e.File == "" {
		return fmt.Sprintf("%s: secret %s: %v", e.Pos, e.Secret, e.Err)
	}
	return fmt.Sprintf("%s: secret %s (%s): %v", e.Pos, e.Secret, e.File, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Options bound what Decrypt reads. The zero value uses the defaults.
type Options struct {
	// MaxFileSize is the largest SOPS file read; default DefaultMaxFileSize.
	MaxFileSize int64
}

// DefaultMaxFileSize bounds a SOPS file: secrets are small, and a repository is untrusted input.
const DefaultMaxFileSize = 1 << 20

// Decrypter opens SOPS files encrypted for age with the identities it holds. It is safe for concurrent use.
type Decrypter struct {
	ids []age.Identity
	// recipients are the public keys of ids, for errors: "encrypted for X; this controller holds Y".
	recipients []string
	// fpKey is derived from the identities (see FingerprintKey).
	fpKey []byte
	opts  Options
}

// LoadIdentities reads age identities from a file or an environment variable (the serve configuration's
// secrets.ageIdentities) and returns a Decrypter holding them. Each identity is registered with package redact.
// Errors name the reference and the line, never the key.
func LoadIdentities(ref *schema.SecretRef, opts Options) (*Decrypter, error) {
	if ref == nil {
		return nil, errors.New("secrets: no age identities configured (secrets.ageIdentities: {file: PATH} or {env: NAME})")
	}
	b, err := ref.Read()
	if err != nil {
		return nil, fmt.Errorf("age identities: %w", err)
	}
	defer clear(b)
	d, err := ParseIdentities(b, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", ref.Pos, ref.Field, err)
	}
	return d, nil
}

// ParseIdentities parses age identities, one per line (AGE-SECRET-KEY-1… or the post-quantum
// AGE-SECRET-KEY-PQ-1…); blank lines and lines starting with '#' are skipped, as in age's key files. Each identity
// is registered with package redact. Errors give the line number only.
func ParseIdentities(data []byte, opts Options) (*Decrypter, error) {
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = DefaultMaxFileSize
	}
	d := &Decrypter{opts: opts}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		redact.Register(line)
		var (
			id  age.Identity
			rcp string
		)
		switch {
		case strings.HasPrefix(line, "AGE-SECRET-KEY-PQ-1"):
			h, err := age.ParseHybridIdentity(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: not a valid age post-quantum identity", n)
			}
			id, rcp = h, h.Recipient().String()
		case strings.HasPrefix(line, "AGE-SECRET-KEY-1"):
			x, err := age.ParseX25519Identity(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: not a valid age identity", n)
			}
			id, rcp = x, x.Recipient().String()
		default:
			return nil, fmt.Errorf("line %d: not an age identity (want AGE-SECRET-KEY-1…; SSH keys and plugins are not supported)", n)
		}
		d.ids = append(d.ids, id)
		d.recipients = append(d.recipients, rcp)
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read age identities: a line is too long or unreadable")
	}
	if len(d.ids) == 0 {
		return nil, errors.New("no age identity found (want lines AGE-SECRET-KEY-1…)")
	}
	slices.Sort(lines)
	m := hmac.New(sha256.New, []byte(strings.Join(lines, "\n")))
	m.Write([]byte(fingerprintLabel))
	d.fpKey = m.Sum(nil)
	return d, nil
}

// NewDecrypter returns a Decrypter holding ids, for callers that parsed or generated them (tests, a key
// service). Its fingerprint key is random: give parsed identities to ParseIdentities for a stable one.
func NewDecrypter(opts Options, ids ...age.Identity) (*Decrypter, error) {
	if opts.MaxFileSize <= 0 {
		opts.MaxFileSize = DefaultMaxFileSize
	}
	if len(ids) == 0 {
		return nil, errors.New("no age identity")
	}
	key, err := NewFingerprintKey()
	if err != nil {
		return nil, err
	}
	d := &Decrypter{ids: ids, fpKey: key, opts: opts}
	for _, id := range ids {
		switch x := id.(type) {
		case *age.X25519Identity:
			d.recipients = append(d.recipients, x.Recipient().String())
		case *age.HybridIdentity:
			d.recipients = append(d.recipients, x.Recipient().String())
		}
	}
	return d, nil
}

// Recipients are the public keys of the identities the Decrypter holds (safe to show).
func (d *Decrypter) Recipients() []string { return slices.Clone(d.recipients) }

// Decrypt returns the clear value of a SOPS secret, read from tree (the directory the repository was loaded
// from): the data key is opened with the Decrypter's identities, the document decrypted and its MAC checked, then
// the value at s.SOPS.Key taken (the whole file when Key is ""). The value is registered with package redact
// before it is returned. Failures are *Error values wrapping one of the Err* causes.
func (d *Decrypter) Decrypt(ctx context.Context, tree fs.FS, s schema.Secret) ([]byte, error) {
	if s.SOPS == nil {
		return nil, &Error{Secret: s.Name, Pos: s.Pos, Err: fmt.Errorf("%w: its source is %s, which the provider resolves", ErrNotSOPSSecret, s.Kind())}
	}
	fail := func(err error) ([]byte, error) {
		return nil, &Error{Secret: s.Name, Pos: s.Pos, File: s.SOPS.File, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	raw, err := d.readFile(tree, s.SOPS.File)
	if err != nil {
		return fail(err)
	}
	doc, err := parseFile(s.SOPS.File, raw)
	if err != nil {
		return fail(err)
	}
	key, err := d.dataKey(doc.meta)
	if err != nil {
		return fail(err)
	}
	defer clear(key)
	if err := doc.decrypt(key); err != nil {
		return fail(err)
	}
	v, err := doc.value(s.SOPS.Key)
	if err != nil {
		return fail(err)
	}
	register(v)
	if s.SOPS.Key == "" {
		doc.registerLeaves()
	}
	return v, nil
}

// register masks a value in berth's outputs; a PEM block also line by line.
func register(v []byte) {
	s := string(v)
	redact.Register(s)
	if t := strings.TrimSpace(s); t != s {
		redact.Register(t)
	}
	if strings.Contains(s, "-----BEGIN") {
		redact.RegisterPEM(s)
	}
}

// readFile reads a SOPS file from tree, refusing symbolic links (where tree can tell) and files over the size bound.
func (d *Decrypter) readFile(tree fs.FS, name string) ([]byte, error) {
	if !fs.ValidPath(name) || name == "." {
		return nil, fmt.Errorf("%w: %q is not a path inside the repository", ErrFileNotFound, name)
	}
	// Every element of the path: a link could lead out of the repository.
	for p := name; p != "."; p = path.Dir(p) {
		fi, err := fs.Lstat(tree, p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s is not in the repository at this revision", ErrFileNotFound, name)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s cannot be read", ErrFileNotFound, name)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%w: %s is a symbolic link; SOPS files must be regular files of the repository", ErrNotSOPS, p)
		}
		if p == name && !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%w: %s is not a regular file", ErrNotSOPS, name)
		}
		if p == name && fi.Size() > d.opts.MaxFileSize {
			return nil, fmt.Errorf("%w: %s is %d bytes, more than the %d a SOPS file may have", ErrNotSOPS, name, fi.Size(), d.opts.MaxFileSize)
		}
	}
	f, err := tree.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %s cannot be opened", ErrFileNotFound, name)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, d.opts.MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s cannot be read", ErrFileNotFound, name)
	}
	if int64(len(b)) > d.opts.MaxFileSize {
		return nil, fmt.Errorf("%w: %s is larger than the %d bytes a SOPS file may have", ErrNotSOPS, name, d.opts.MaxFileSize)
	}
	return b, nil
}
