package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
	"github.com/berth-dev/berth/schema/secrets"
)

// SecretResolver gives a workload's provider the secrets the workload uses: SOPS values decrypted in memory,
// references to stores passed on, each with a fingerprint for change detection. It never writes a value anywhere.
type SecretResolver interface {
	// Resolve returns the secrets w uses (w.Secrets()), by name, declared in cfg's environment env.
	Resolve(ctx context.Context, cfg *schema.Config, env schema.Environment, w schema.Workload) (map[string]providers.Secret, error)
}

// Secrets is the SecretResolver of a controller: its age identities decrypt SOPS files read from the
// configuration's tree (schema.Config.Root); SOPS values are fingerprinted with Key (secrets.Decrypter.FingerprintKey
// when there are identities), references to stores with a plain hash of the reference.
type Secrets struct {
	// Decrypter opens SOPS files; nil when the controller holds no age identity (a SOPS secret then fails its
	// workload's step, saying how to give one).
	Decrypter *secrets.Decrypter
	// Key keys the fingerprints; it must be stable across restarts (see secrets.Fingerprint).
	Key []byte
}

// ErrNoIdentities is the cause of a SOPS secret's failure when the controller holds no age identity.
var ErrNoIdentities = errors.New("no age identity is configured (serve configuration secrets.ageIdentities, or --age-identities)")

// Resolve implements SecretResolver.
func (s *Secrets) Resolve(ctx context.Context, cfg *schema.Config, env schema.Environment, w schema.Workload) (map[string]providers.Secret, error) {
	names := w.Secrets()
	if len(names) == 0 {
		return nil, nil
	}
	out := make(map[string]providers.Secret, len(names))
	var errs []error
	for _, n := range names {
		src, ok := env.Secrets[n]
		if !ok { // the loader refuses this; a hand-made configuration may not
			errs = append(errs, fmt.Errorf("%s: workload %s: secret %s is not declared", w.Position(providers.SecretField(w, n)), w.Name, n))
			continue
		}
		sec := providers.Secret{Name: n, Source: src}
		if src.Kind() == schema.SecretSOPS {
			v, err := s.decrypt(ctx, cfg, src)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: workload %s: %w", w.Position(providers.SecretField(w, n)), w.Name, err))
				continue
			}
			sec.Value = v
			sec.Fingerprint = secrets.Fingerprint(s.Key, v)
		} else {
			// The value stays in the store; the reference is what berth can see change. It is no secret: a plain
			// hash keeps the fingerprint stable whatever the key.
			src.Pos = schema.Pos{}
			ref, _ := json.Marshal(src)
			sum := sha256.Sum256(ref)
			sec.Fingerprint = hex.EncodeToString(sum[:])[:secrets.FingerprintLen]
		}
		out[n] = sec
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func (s *Secrets) decrypt(ctx context.Context, cfg *schema.Config, src schema.Secret) ([]byte, error) {
	if s.Decrypter == nil {
		return nil, &secrets.Error{Secret: src.Name, Pos: src.Pos, File: src.SOPS.File, Err: ErrNoIdentities}
	}
	if cfg.Root == nil {
		return nil, &secrets.Error{Secret: src.Name, Pos: src.Pos, File: src.SOPS.File,
			Err: errors.New("the configuration has no repository tree to read the file from")}
	}
	return s.Decrypter.Decrypt(ctx, cfg.Root, src)
}

// resolve resolves w's secrets with the engine's resolver.
func (e *Engine) resolve(ctx context.Context, cfg *schema.Config, ev schema.Environment, w schema.Workload) (map[string]providers.Secret, error) {
	if len(w.Secrets()) == 0 {
		return nil, nil
	}
	r := e.opts.Secrets
	if r == nil {
		r = e.fallback
	}
	return r.Resolve(ctx, cfg, ev, w)
}

// resolveAll resolves the secrets of every workload of ev that uses any; the ones that fail are in errs.
func (e *Engine) resolveAll(ctx context.Context, cfg *schema.Config, ev schema.Environment) (ok map[string]map[string]providers.Secret, errs map[string]error) {
	ok, errs = map[string]map[string]providers.Secret{}, map[string]error{}
	ws := append([]schema.Workload(nil), ev.Workloads...)
	sort.Slice(ws, func(i, j int) bool { return ws[i].Name < ws[j].Name })
	for _, w := range ws {
		ss, err := e.resolve(ctx, cfg, ev, w)
		if err != nil {
			errs[w.Name] = err
		} else if ss != nil {
			ok[w.Name] = ss
		}
	}
	return ok, errs
}
