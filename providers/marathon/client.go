package marathon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema/redact"
)

// APIError is an answer of Marathon other than 2xx.
type APIError struct {
	Method, Path string
	Status       int
	Message      string
	// Details are the validation errors of a 422 answer (a JSON path and what is wrong there).
	Details []ErrorDetail
	// Deployments are the ids of the deployments locking the app (409).
	Deployments []string
}

// ErrorDetail is one validation error of a 422 answer.
type ErrorDetail struct {
	Path   string   `json:"path"`
	Errors []string `json:"errors"`
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d", e.Method, e.Path, e.Status)
	if e.Message != "" {
		b.WriteString(" " + e.Message)
	}
	for _, d := range e.Details {
		fmt.Fprintf(&b, "; %s: %s", d.Path, strings.Join(d.Errors, ", "))
	}
	return redact.String(b.String()) // Marathon's words may quote the definition, env values included
}

// Locked tells whether the app is locked by a deployment (409).
func (e *APIError) Locked() bool { return e.Status == http.StatusConflict }

// NotFound tells whether the object does not exist (404).
func (e *APIError) NotFound() bool { return e.Status == http.StatusNotFound }

// transient tells whether repeating the same call may succeed.
func (e *APIError) transient() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout || e.Status >= 500
}

// errorBody is Marathon's error answer.
type errorBody struct {
	Message     string        `json:"message"`
	Details     []ErrorDetail `json:"details"`
	Deployments []struct {
		ID string `json:"id"`
	} `json:"deployments"`
}

// do runs one HTTP call: body (when not nil) as JSON, the DC/OS token when configured, the answer decoded into out
// (when not nil). A non-2xx answer is an *APIError.
func (p *Provider) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := *p.set.address
	u.Path += path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return providers.Permanent(fmt.Errorf("%s %s: encoding the request: %w", method, path, err))
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return providers.Permanent(fmt.Errorf("%s %s: %w", method, path, err))
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if p.set.tokenEnv != "" {
		tok := os.Getenv(p.set.tokenEnv)
		if tok == "" {
			return providers.Permanent(fmt.Errorf("target %q: the DC/OS token variable %s is empty or unset", p.target, p.set.tokenEnv))
		}
		req.Header.Set("Authorization", "token="+tok)
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Method: method, Path: path, Status: resp.StatusCode}
		var eb errorBody
		if json.Unmarshal(data, &eb) == nil {
			e.Message, e.Details = eb.Message, eb.Details
			for _, d := range eb.Deployments {
				e.Deployments = append(e.Deployments, d.ID)
			}
		}
		return e
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return nil
}

// call runs one HTTP call with a timeout, retrying transient failures (5xx, 429, timeouts, dropped connections)
// with capped exponential backoff and jitter within RetryAttempts. Invalid requests (400, 401, 403, 422) come back
// wrapped in providers.Permanent; 404 and 409 come back as an *APIError for the caller to decide.
func (p *Provider) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	backoff := p.RetryBase
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, CallTimeout)
		err := p.do(cctx, method, path, query, body, out)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("marathon %s %s: %w", method, path, ctx.Err())
		}
		if errors.Is(err, providers.ErrPermanent) {
			return err
		}
		var ae *APIError
		if errors.As(err, &ae) && !ae.transient() {
			if ae.NotFound() || ae.Locked() {
				return ae
			}
			if ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden {
				return providers.Permanent(p.explain(ae))
			}
			return providers.Permanent(fmt.Errorf("marathon: %w", ae))
		}
		if attempt >= p.RetryAttempts {
			return fmt.Errorf("marathon %s %s: still failing after %d tries: %w", method, path, attempt, err)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		p.log.DebugContext(ctx, "marathon call failed, retrying", "method", method, "path", path, "attempt", attempt, "wait", wait, "err", err)
		if err := providers.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("marathon %s %s: %w", method, path, err)
		}
		backoff = min(2*backoff, p.RetryMax)
	}
}

// explain says how to fix a refused DC/OS token (401) or a missing permission (403), quoting Marathon's words
// (bounded, redacted); the result unwraps to ae.
func (p *Provider) explain(ae *APIError) error {
	fix := "the target sends no DC/OS token: for DC/OS strict or permissive mode, log a service account in " +
		"(`dcos auth login --username ACCOUNT --private-key KEY.pem`), put its token (`dcos config show " +
		"core.dcos_acs_token`) in an environment variable and name it in settings.tokenEnv"
	if p.set.tokenEnv != "" {
		fix = "the DC/OS token in " + p.set.tokenEnv + " (settings.tokenEnv) is wrong or expired (tokens last 5 days " +
			"by default): put a fresh one there (`dcos auth login`, then `dcos config show core.dcos_acs_token`)"
	}
	what := "authentication refused"
	if ae.Status == http.StatusForbidden {
		what = "permission denied"
		fix = "the account lacks Marathon's permissions: grant it dcos:service:marathon:marathon:services:/ (full) " +
			"or the app group berth uses (`dcos security org users grant ACCOUNT " +
			"dcos:service:marathon:marathon:services:/ full`)"
	}
	return &explained{err: ae, msg: fmt.Sprintf("marathon target %q: %s: %s. To fix: %s", p.target, what,
		strings.TrimRight(redact.Body([]byte(ae.Error()), 400), "."), fix)}
}

// explained is an error with a message for people; it unwraps to the error it explains.
type explained struct {
	err error
	msg string
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

// appPath is the API path of app id ("/berth/i/dev/web" → "/v2/apps/berth/i/dev/web").
func appPath(id string) string { return "/v2/apps" + id }

// getApp reads app id with its tasks; nil when it does not exist.
func (p *Provider) getApp(ctx context.Context, id string) (*app, error) {
	var out struct {
		App *app `json:"app"`
	}
	err := p.call(ctx, http.MethodGet, appPath(id), url.Values{"embed": {"apps.tasks"}}, nil, &out)
	var ae *APIError
	if errors.As(err, &ae) && ae.NotFound() {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if out.App == nil {
		return nil, fmt.Errorf("GET %s: the answer has no app", appPath(id))
	}
	return out.App, nil
}

// deploymentIDs lists the ids of the deployments in progress.
func (p *Provider) deploymentIDs(ctx context.Context) (map[string]bool, error) {
	var deps []struct {
		ID string `json:"id"`
	}
	if err := p.call(ctx, http.MethodGet, "/v2/deployments", nil, nil, &deps); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, d := range deps {
		out[d.ID] = true
	}
	return out, nil
}

// waitDeployments polls until none of ids is in progress.
func (p *Provider) waitDeployments(ctx context.Context, ids []string) error {
	for {
		running, err := p.deploymentIDs(ctx)
		if err != nil {
			return err
		}
		left := 0
		for _, id := range ids {
			if running[id] {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		if err := providers.Sleep(ctx, p.PollInterval); err != nil {
			return fmt.Errorf("waiting for deployments %v: %w", ids, err)
		}
	}
}
