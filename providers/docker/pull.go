package docker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/docker/registryauth"
)

// encodeAuth is the X-Registry-Auth value of a for pulling ref (see registryauth.Encode).
func encodeAuth(ref string, a *providers.RegistryAuth) (string, error) {
	return registryauth.Encode(ref, a)
}

// pull brings ref into the engine's store with the X-Registry-Auth value auth ("" for anonymous), its progress
// drained; each attempt is bounded by PullTimeout and ctx. A failure that may pass (the registry unreachable or
// overloaded, a dropped stream) is retried with capped exponential backoff and jitter within PullAttempts; one
// that cannot (not found, unauthorized, an invalid reference, an unknown registry host) is Permanent. Errors name
// ref, never the credential.
func (p *Provider) pull(ctx context.Context, log *slog.Logger, ref, auth string) error {
	r := providers.Retry{Base: PullRetryBase, Max: PullRetryMax, Attempts: PullAttempts, Timeout: PullTimeout,
		Classify: classifyPull, Logger: log}
	err := r.Do(ctx, "pull", func(ctx context.Context) error {
		rc, err := p.cli.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: auth})
		if err != nil {
			return err
		}
		return drainPull(rc)
	})
	return err
}

// pullError is an error a pull's progress stream reported.
type pullError struct{ msg string }

func (e *pullError) Error() string { return e.msg }

// classifyPull sorts a failed pull. The engine answers most registry failures as a server error whose message
// says what happened, so the message decides where the error kind does not.
func classifyPull(err error) providers.Class {
	if err == nil {
		return providers.Final
	}
	msg := strings.ToLower(err.Error())
	switch {
	case cerrdefs.IsNotFound(err), cerrdefs.IsInvalidArgument(err), cerrdefs.IsUnauthorized(err),
		cerrdefs.IsPermissionDenied(err):
		return providers.Invalid
	case containsAny(msg, "unauthorized", "authentication required", "denied", "forbidden", "manifest unknown",
		"not found", "no such host", "invalid reference", "repository name must", "no matching manifest",
		"unsupported", "http: server gave http response to https client"):
		return providers.Invalid
	case client.IsErrConnectionFailed(err):
		return providers.Transient // the engine itself did not answer
	case errors.Is(err, context.DeadlineExceeded), cerrdefs.IsDeadlineExceeded(err), cerrdefs.IsUnavailable(err),
		cerrdefs.IsResourceExhausted(err), cerrdefs.IsInternal(err), cerrdefs.IsUnknown(err):
		return providers.Transient
	case containsAny(msg, "connection refused", "connection reset", "i/o timeout", "timeout", "toomanyrequests",
		"too many requests", "unexpected eof", "tls handshake", "502", "503", "504"):
		return providers.Transient
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return providers.Transient
	}
	var pe *pullError
	if errors.As(err, &pe) {
		return providers.Transient // a stream ended by an error of no known kind: worth another try
	}
	return providers.Final
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// drainPull reads a pull's progress stream to its end and returns the error it reports.
func drainPull(rc io.ReadCloser) error {
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return &pullError{msg: "reading pull output: " + err.Error()}
		}
		if m.Error != nil {
			return &pullError{msg: m.Error.Message}
		}
	}
}
