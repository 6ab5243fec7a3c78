package azure_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure"
	"github.com/berth-dev/berth/providers/azure/aciemu"
	"github.com/berth-dev/berth/providers/registry"
	"github.com/berth-dev/berth/providers/registry/registrytest"
	"github.com/berth-dev/berth/schema"
)

// argsWorkload is the reference workload giving args without a command, on image.
func argsWorkload(name, image string) schema.Workload {
	w := referenceWorkload(name)
	w.Image, w.Command, w.Args, w.Replicas = image, nil, []string{"serve", "--port=8080"}, 1
	return w
}

// commandOf is the command the emulator stored for the workload's group of replica 0.
func commandOf(t *testing.T, emu *aciemu.Server, workload string) []string {
	t.Helper()
	for _, g := range emu.Groups() {
		if g.Tags[azure.TagWorkload] == workload && g.Tags[azure.TagReplica] == "0" {
			stored, _ := emu.Stored(testSub, testRG, g.Name)
			var out []string
			for _, s := range container(&stored).Command {
				out = append(out, *s)
			}
			return out
		}
	}
	t.Fatalf("no group of %s", workload)
	return nil
}

// observed is the workload's observed spec and the one the planner compares it with (Normalize of the desired).
func observed(t *testing.T, p *azure.Provider, o providers.Owner, w schema.Workload) (got, want schema.Workload) {
	t.Helper()
	for _, obs := range listed(t, p, o) {
		if obs.Workload == w.Name {
			want = p.Normalize(providers.Normalize(w))
			want.Replicas = obs.Spec.Replicas
			return providers.Normalize(obs.Spec), want
		}
	}
	t.Fatalf("List shows no %s", w.Name)
	return
}

// TestArgsWithoutCommand: a workload that gives args without a command runs the image's entrypoint (read from a
// registry behind a bearer-token challenge) followed by the args, as docker and Kubernetes run it; the image's Cmd
// is dropped. List reads the args back as args (no drift), a hand edit of the entrypoint part shows as a command
// and Apply puts it back.
func TestArgsWithoutCommand(t *testing.T) {
	reg := registrytest.New(registrytest.Options{})
	t.Cleanup(reg.Close)
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	p := newProvider(t, emu)
	ctx := context.Background()
	o := providers.Owner{Instance: "i", Environment: "dev"}
	for _, c := range []struct {
		name string
		img  registrytest.Image
		want []string
	}{
		{"docker", registrytest.Image{Entrypoint: []string{"/web", "--log=json"}, Cmd: []string{"ignored"}},
			[]string{"/web", "--log=json", "serve", "--port=8080"}},
		{"oci-index", registrytest.Image{Entrypoint: []string{"/bin/web"}, OCI: true, Index: true},
			[]string{"/bin/web", "serve", "--port=8080"}},
		// No entrypoint: the args are the whole command (they replace the image's Cmd).
		{"cmd-only", registrytest.Image{Cmd: []string{"/web", "default"}}, []string{"serve", "--port=8080"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ref, _ := reg.Push("berth/"+c.name, "1", c.img)
			w := argsWorkload(c.name, ref)
			if problems := p.Validate(w); len(problems) != 0 {
				t.Fatalf("Validate: %+v", problems)
			}
			tokens := reg.Requests("GET /token")
			if err := p.Apply(ctx, providers.Desired{Owner: o, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
				t.Fatal(err)
			}
			if got := commandOf(t, emu, w.Name); !slices.Equal(got, c.want) {
				t.Errorf("command %q, want %q", got, c.want)
			}
			if reg.Requests("GET /token") == tokens && tokens == 0 {
				t.Error("no token was asked for: the registry's challenge was not met")
			}
			got, want := observed(t, p, o, w)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("read back:\n got %+v\nwant %+v", got, want)
			}
		})
	}

	// A hand edit of the entrypoint part reads back as a command; Apply restores it.
	w := argsWorkload("docker", reg.Host()+"/berth/docker:1")
	cli := sdkClient(t, emu)
	var name string
	for _, g := range emu.Groups() {
		if g.Tags[azure.TagWorkload] == w.Name {
			name = g.Name
		}
	}
	g := getGroup(ctx, t, cli, name)
	container(g).Command[0] = to.Ptr("/other")
	putGroup(ctx, t, cli, name, g)
	got, want := observed(t, p, o, w)
	if slices.Equal(got.Command, want.Command) || !slices.Equal(got.Command, []string{"/other", "--log=json", "serve", "--port=8080"}) || got.Args != nil {
		t.Fatalf("edited entrypoint: command %q args %q, want the whole list as a command", got.Command, got.Args)
	}
	if err := p.Apply(ctx, providers.Desired{Owner: o, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
		t.Fatal(err)
	}
	if got, want := observed(t, p, o, w); !reflect.DeepEqual(got, want) {
		t.Errorf("after repair:\n got %+v\nwant %+v", got, want)
	}
	// A hand edit of the args part reads back as args.
	g = getGroup(ctx, t, cli, name)
	container(g).Command = append(container(g).Command, to.Ptr("--debug"))
	putGroup(ctx, t, cli, name, g)
	if got, _ := observed(t, p, o, w); got.Command != nil || !slices.Equal(got.Args, []string{"serve", "--port=8080", "--debug"}) {
		t.Errorf("edited args: command %q args %q", got.Command, got.Args)
	}
}

// TestArgsWithoutCommandRegistryErrors: a tag the registry does not have fails the apply permanently before any
// group is made, naming the registry's code; refused credentials too; a registry 503 is retried; credentials given
// on Provider.Registry are sent to the token endpoint.
func TestArgsWithoutCommandRegistryErrors(t *testing.T) {
	reg := registrytest.New(registrytest.Options{User: "berth", Password: "pw"})
	t.Cleanup(reg.Close)
	ref, _ := reg.Push("berth/web", "1", registrytest.Image{Entrypoint: []string{"/web"}})
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	p := newProvider(t, emu)
	ctx := context.Background()
	o := providers.Owner{Instance: "i", Environment: "dev"}
	apply := func(image string) error {
		w := argsWorkload("web", image)
		return p.Apply(ctx, providers.Desired{Owner: o, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w)})
	}

	err := apply(ref)
	if !errors.Is(err, providers.ErrPermanent) || !errors.Is(err, registry.ErrUnauthorized) || !strings.Contains(err.Error(), "entrypoint") {
		t.Fatalf("no credentials: %v, want a permanent unauthorized error about the entrypoint", err)
	}
	p.Registry.Credentials = func(host string) (string, string) {
		if host == reg.Host() {
			return "berth", "pw"
		}
		return "", ""
	}
	err = apply(reg.Host() + "/berth/web:2")
	if !errors.Is(err, providers.ErrPermanent) || !errors.Is(err, registry.ErrNotFound) || !strings.Contains(err.Error(), "MANIFEST_UNKNOWN") {
		t.Fatalf("missing tag: %v, want a permanent error with MANIFEST_UNKNOWN", err)
	}
	if n := len(emu.Groups()); n != 0 {
		t.Fatalf("%d groups made for an image whose entrypoint could not be read", n)
	}
	reg.FailNext(2)
	if err := apply(ref); err != nil {
		t.Fatalf("after two 503s: %v", err)
	}
	if got := commandOf(t, emu, "web"); !slices.Equal(got, []string{"/web", "serve", "--port=8080"}) {
		t.Errorf("command %q", got)
	}
}

// TestTCPHealthCheckProblem: ACI probes are exec or httpGet only; a TCP check is a plan-time problem on health.tcp
// that says why and what to write instead, naming the port.
func TestTCPHealthCheckProblem(t *testing.T) {
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	p := newProvider(t, emu)
	w := referenceWorkload("web")
	w.Health = &schema.HealthCheck{TCP: &schema.TCPCheck{Port: 8080}}
	ps := p.Validate(w)
	if len(ps) != 1 || ps[0].Field != "health.tcp" {
		t.Fatalf("problems %+v, want one on health.tcp", ps)
	}
	for _, s := range []string{"exec or httpGet", "8080", "health.command", "health.http", "nc"} {
		if !strings.Contains(ps[0].Message, s) {
			t.Errorf("message %q does not say %q", ps[0].Message, s)
		}
	}
	if p.Capabilities().HealthTCP {
		t.Error("Capabilities claim TCP health checks")
	}
}

// TestGoldenArgsOnly pins the create of the reference workload given as args without a command, its image on a
// registry named registry.example (dialled on the test registry's loopback address): the command is the image's
// entrypoint + args and the groups carry berth.dev-entrypoint.
func TestGoldenArgsOnly(t *testing.T) {
	reg := registrytest.New(registrytest.Options{})
	t.Cleanup(reg.Close)
	reg.Push("berth-dev/quickstart", "1", registrytest.Image{Entrypoint: []string{"/app"}, Cmd: []string{"serve"}})
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	p := newProvider(t, emu)
	p.Registry = &registry.Client{
		PlainHTTP: func(host string) bool { return host == "registry.example" },
		HTTP: &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, reg.Host())
		}}},
	}
	w := referenceWorkload("web")
	w.Image, w.Command, w.Args = "registry.example/berth-dev/quickstart:1", nil, []string{"serve", "--port=8080"}
	owner := providers.Owner{Instance: "golden", Environment: "prod"}
	if err := p.Apply(context.Background(), providers.Desired{Owner: owner, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "args.golden", emu.Requests())
}

// TestArgsWithoutCommandDistribution: the same against the real distribution server (docker-registry) with token
// authentication and the provider's registry credentials.
func TestArgsWithoutCommandDistribution(t *testing.T) {
	reg := registrytest.StartDistribution(t)
	ref, _ := reg.Push(t, "berth/web", "1", registrytest.Image{Entrypoint: []string{"/web", "--json"}, Cmd: []string{"ignored"}, OCI: true})
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	p := newProvider(t, emu)
	p.Registry.Credentials = reg.Credentials
	w := argsWorkload("web", ref)
	o := providers.Owner{Instance: "i", Environment: "dev"}
	if err := p.Apply(context.Background(), providers.Desired{Owner: o, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
		t.Fatal(err)
	}
	if got := commandOf(t, emu, "web"); !slices.Equal(got, []string{"/web", "--json", "serve", "--port=8080"}) {
		t.Errorf("command %q", got)
	}
	if got, want := observed(t, p, o, w); !reflect.DeepEqual(got, want) {
		t.Errorf("read back:\n got %+v\nwant %+v", got, want)
	}
}
