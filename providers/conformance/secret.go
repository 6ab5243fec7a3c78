package conformance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/reconciler"
	"github.com/berth-dev/berth/schema"
)

// staticSecrets resolves the suite's secrets as the controller would: SOPS values given, references passed on,
// fingerprinted like reconciler.Secrets does.
type staticSecrets struct {
	mu     sync.Mutex
	values map[string][]byte
	inner  reconciler.Secrets
}

func (r *staticSecrets) set(name string, v []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.values[name] = v
}

func (r *staticSecrets) Resolve(ctx context.Context, cfg *schema.Config, env schema.Environment, w schema.Workload) (map[string]providers.Secret, error) {
	// References go through the controller's own resolver; SOPS values are the suite's (no file to decrypt).
	out := map[string]providers.Secret{}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range w.Secrets() {
		src := env.Secrets[n]
		if src.Kind() != schema.SecretSOPS {
			one := w
			one.SecretEnv = map[string]string{"X": n}
			one.Files = nil
			ss, err := r.inner.Resolve(ctx, cfg, env, one)
			if err != nil {
				return nil, err
			}
			out[n] = ss[n]
			continue
		}
		v := r.values[n]
		out[n] = providers.Secret{Name: n, Source: src, Value: v, Fingerprint: fmt.Sprintf("%x", len(v)) + "-" + shortHash(v)}
	}
	return out, nil
}

// secret: GREETING from a secret; the workload serves it, nothing else of the runtime's holds it, the read-back
// shows no value, a rotation rolls the workload and is served, and the plan never shows a value.
func (s *suite) secret(t *testing.T) {
	sc := s.h.Secrets
	if sc == nil {
		t.Skip("Harness.Secrets is nil")
	}
	const name, secret = "cf-secret", "greeting"
	p := s.provider(t, name)
	res := &staticSecrets{values: map[string][]byte{}}
	w := s.workload(t, name, 2, "")
	delete(w.Env, "GREETING")
	w.SecretEnv = map[string]string{"GREETING": secret}
	declare := func(value string) schema.Secret {
		if sc.Source == nil {
			res.set(secret, []byte(value))
			return schema.Secret{Name: secret, SOPS: &schema.SOPSSecret{File: "secrets/greeting.enc.yaml", Key: "greeting"}}
		}
		src, v := sc.Source(s.ctx(t), t, secret, value)
		src.Name = secret
		if v != nil {
			res.set(secret, v)
		}
		return src
	}
	run := func(value, what string, ok func(*reconciler.Plan) string) *reconciler.Plan {
		t.Helper()
		src := declare(value)
		var plan *reconciler.Plan
		var cfg *schema.Config
		s.waitFor(t, what, func(ctx context.Context) string {
			var err error
			plan, cfg, err = s.planSecrets(ctx, t, p, w, res, src)
			if err != nil {
				return "Plan: " + err.Error()
			}
			return ok(plan)
		})
		if err := s.applySecrets(t, p, cfg, plan, res); err != nil {
			t.Fatalf("applying\n%s: %v", plan, err)
		}
		shown, _ := json.Marshal(plan)
		if strings.Contains(plan.String()+string(shown), value) {
			t.Fatalf("the plan shows the secret's value:\n%s", plan)
		}
		s.waitFor(t, "an empty plan after the apply", func(ctx context.Context) string {
			again, _, err := s.planSecrets(ctx, t, p, w, res, src)
			switch {
			case err != nil:
				return "Plan: " + err.Error()
			case !again.Empty():
				return "not empty:\n" + again.String()
			}
			return ""
		})
		return plan
	}
	const one, two = "conformance-secret-value-one", "conformance-secret-value-two"
	run(one, "a plan creating "+name, func(plan *reconciler.Plan) string {
		if len(plan.Steps) != 1 || plan.Steps[0].Action != reconciler.ActionCreate {
			return "want one create step:\n" + plan.String()
		}
		return ""
	})
	s.serves(t, w, one)
	s.noValue(t, p, name, one)
	rotated := run(two, "a plan rolling "+name+" for the rotated secret", func(plan *reconciler.Plan) string {
		if _, ok := changeAt(plan, name, "secret "+secret); !ok {
			return "no change of the secret:\n" + plan.String()
		}
		return ""
	})
	t.Logf("rotation planned as: %s", rotated.Steps[0])
	s.serves(t, w, two, one)
	s.noValue(t, p, name, two)
}

// noValue checks that neither the read-back nor the runtime's other objects (Secrets.Leaks) hold value.
func (s *suite) noValue(t *testing.T, p providers.Provider, name, value string) {
	t.Helper()
	o, _ := s.observe(t, p, name)
	if b, _ := json.Marshal(o); strings.Contains(string(b), value) {
		t.Fatalf("List reads the secret's value back: %s", b)
	}
	if s.h.Secrets.Leaks != nil {
		if where := s.h.Secrets.Leaks(s.ctx(t), t, name, value); where != "" {
			t.Fatalf("the runtime holds the secret's value in %s", where)
		}
	}
}

// planSecrets plans w with secret src declared, resolved by res.
func (s *suite) planSecrets(ctx context.Context, t *testing.T, p providers.Provider, w schema.Workload, res *staticSecrets, src schema.Secret) (*reconciler.Plan, *schema.Config, error) {
	t.Helper()
	cfg := s.config(p, w)
	ev := cfg.Environments[s.h.Owner.Environment]
	ev.Secrets = map[string]schema.Secret{src.Name: src}
	cfg.Environments[s.h.Owner.Environment] = ev
	plan, err := s.engineWith(t, p, res).Plan(ctx, cfg, s.h.Owner.Environment, "conformance")
	if err != nil {
		return nil, nil, err
	}
	if len(plan.Problems) > 0 {
		t.Fatalf("conformance: the secret workload is blocked on this target: %s", plan.BlockedReason())
	}
	s.only(plan, w.Name)
	return plan, cfg, nil
}

func (s *suite) applySecrets(t *testing.T, p providers.Provider, cfg *schema.Config, plan *reconciler.Plan, res *staticSecrets) error {
	r, err := s.engineWith(t, p, res).Apply(s.ctx(t), cfg, plan)
	if err == nil && r.Failed() > 0 {
		err = fmt.Errorf("%d steps failed", r.Failed())
	}
	return err
}

func shortHash(v []byte) string {
	sum := sha256.Sum256(v)
	return hex.EncodeToString(sum[:8])
}
