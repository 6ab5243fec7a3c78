package docker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/schema"
)

// offlineWorkloads are workloads with and without problems for docker.
var offlineWorkloads = []schema.Workload{
	{Name: "ok", Image: "app:1", Replicas: 2, Ports: []schema.Port{{Port: 8080, Protocol: "tcp", Public: true}}},
	{Name: "udp", Image: "app:1", Ports: []schema.Port{{Port: 53, Protocol: "udp", Public: true}, {Port: 54, Protocol: "udp"}}},
	{Name: "dup", Image: "app:1", Ports: []schema.Port{{Port: 80, Protocol: "tcp", Public: true},
		{Port: 81, Protocol: "tcp", Public: true, HostPort: 80}, {Port: 80, Protocol: "TCP"}}},
	{Name: "health", Image: "app:1", Health: &schema.HealthCheck{Command: []string{"/app", "healthcheck"}}},
}

func TestOfflineEqualsProvider(t *testing.T) {
	for _, settings := range []map[string]any{nil, {"publicAddress": "127.0.0.1"},
		{"host": "tcp://127.0.0.1:1", "publicAddress": "0.0.0.0"}} {
		tgt := schema.Target{Name: "local", Type: "docker", Settings: settings}
		caps, v, err := providers.OfflineFor(tgt)
		if err != nil {
			t.Fatalf("OfflineFor %v: %v", settings, err)
		}
		// The provider is built without reaching the engine (New makes a client only).
		pv, err := New(tgt, providers.Options{})
		if err != nil {
			t.Fatal(err)
		}
		p := pv.(*Provider)
		if !reflect.DeepEqual(caps, p.Capabilities()) {
			t.Fatalf("settings %v: offline capabilities %+v, the provider's %+v", settings, caps, p.Capabilities())
		}
		for _, w := range offlineWorkloads {
			if got, want := v.Validate(w), p.Validate(w); !reflect.DeepEqual(got, want) {
				t.Fatalf("settings %v, workload %s: offline problems %+v, the provider's %+v", settings, w.Name, got, want)
			}
		}
		p.Close()
	}
	if probs := (validator{}).Validate(offlineWorkloads[1]); len(probs) != 1 || probs[0].Field != "ports[0].public" {
		t.Fatalf("public UDP: %+v", probs)
	}
	_, _, err := providers.OfflineFor(schema.Target{Name: "bad", Type: "docker", Pos: schema.Pos{File: "t.cue", Line: 4},
		Settings: map[string]any{"hots": "x"}})
	if err == nil || !strings.Contains(err.Error(), "t.cue:4") || !strings.Contains(err.Error(), "settings.hots") {
		t.Fatalf("OfflineFor with an unknown setting: %v", err)
	}
}

func TestCapabilitiesHow(t *testing.T) {
	caps := capabilities()
	if !caps.PullsImages {
		t.Fatal("docker pulls images with Desired.ImageAuth: PullsImages must be set")
	}
	honoured := map[string]bool{
		providers.FeaturePublicPort: caps.PublicPorts, providers.FeatureAddress: caps.PublicPorts,
		providers.FeatureHealthHTTP: caps.HealthHTTP, providers.FeatureHealthTCP: caps.HealthTCP,
		providers.FeatureHealthCommand: caps.HealthCommand, providers.FeatureCPU: caps.CPULimit,
		providers.FeatureMemory: caps.MemoryLimit, providers.FeatureArgs: true, providers.FeatureRollout: true,
	}
	for _, f := range providers.Features {
		if h := caps.How[f]; honoured[f] != (h != "") {
			t.Errorf("How[%s] = %q, honoured %v", f, h, honoured[f])
		}
	}
	for f := range caps.How {
		if !slices.Contains(providers.Features, f) {
			t.Errorf("How has %q, not a feature key", f)
		}
	}
}

func TestEncodeAuth(t *testing.T) {
	a := &providers.RegistryAuth{Server: "127.0.0.1:5000", Username: "u", Password: []byte("p@ss")}
	enc, err := encodeAuth("127.0.0.1:5000/team/app:1@sha256:"+strings.Repeat("a", 64), a)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.URLEncoding.DecodeString(enc)
	if err != nil {
		t.Fatalf("X-Registry-Auth %q is not base64url: %v", enc, err)
	}
	var got map[string]string
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got["username"] != "u" || got["password"] != "p@ss" || got["serveraddress"] != "127.0.0.1:5000" {
		t.Fatalf("decoded %v", got)
	}
	if enc, err := encodeAuth("app:1", nil); enc != "" || err != nil {
		t.Fatalf("anonymous: %q, %v", enc, err)
	}
	for _, c := range []struct {
		ref, server string
		ok          bool
	}{
		{"nginx:1", "docker.io", true},
		{"nginx:1", "https://index.docker.io/v1/", true},
		{"docker.io/library/nginx:1", "registry-1.docker.io", true},
		{"ghcr.io/o/app:1", "GHCR.io", true},
		{"ghcr.io/o/app:1", "docker.io", false},
		{"127.0.0.1:5000/app:1", "127.0.0.1:5001", false},
		{"nginx:1", "ghcr.io", false},
	} {
		_, err := encodeAuth(c.ref, &providers.RegistryAuth{Server: c.server, Username: "u", Password: []byte("secret-pw")})
		if (err == nil) != c.ok {
			t.Errorf("encodeAuth(%s, server %s): %v, want ok %v", c.ref, c.server, err, c.ok)
		}
		if err != nil && strings.Contains(err.Error(), "secret-pw") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	if _, err := encodeAuth("Bad Ref", a); err == nil {
		t.Fatal("an invalid reference was accepted")
	}
}

func TestClassifyPull(t *testing.T) {
	daemon := func(msg string) error { return errors.New("Error response from daemon: " + msg) }
	for _, c := range []struct {
		err  error
		want providers.Class
	}{
		{daemon(`Get "http://127.0.0.1:5000/v2/a/manifests/v1": unauthorized: bad credentials`), providers.Invalid},
		{daemon("pull access denied for a, repository does not exist or may require 'docker login'"), providers.Invalid},
		{daemon("manifest for 127.0.0.1:5000/a:v1 not found: manifest unknown: manifest unknown"), providers.Invalid},
		{daemon(`Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: no such host`), providers.Invalid},
		{cerrdefs.ErrNotFound.WithMessage("no such image"), providers.Invalid},
		{daemon(`Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused`), providers.Transient},
		{daemon("toomanyrequests: You have reached your pull rate limit"), providers.Transient},
		{&pullError{msg: "reading pull output: unexpected EOF"}, providers.Transient},
		{&pullError{msg: "something odd"}, providers.Transient},
		{context.DeadlineExceeded, providers.Transient},
		{fmt.Errorf("wrapped: %w", &net.OpError{Op: "dial", Err: errors.New("x")}), providers.Transient},
		{errors.New("an error of no known kind"), providers.Final},
		{cerrdefs.ErrUnavailable.WithMessage("engine busy"), providers.Transient},
		{client.ErrorConnectionFailed("unix:///var/run/docker.sock"), providers.Transient},
	} {
		if got := classifyPull(c.err); got != c.want {
			t.Errorf("classifyPull(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
