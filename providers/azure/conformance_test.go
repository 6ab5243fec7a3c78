package azure_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure"
	"github.com/berth-dev/berth/providers/azure/aciemu"
	"github.com/berth-dev/berth/providers/azure/keyvaultemu"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/schema"
)

// TestConformance runs the shared provider suite with the real SDK client against the emulator.
func TestConformance(t *testing.T) {
	emu := aciemu.New(aciemu.Options{Images: []string{"ghcr.io/berth-dev/quickstart:1", "ghcr.io/berth-dev/quickstart:2"}})
	t.Cleanup(emu.Close)
	owner := providers.Owner{Instance: "conf", Environment: "dev"}
	find := func(t *testing.T, workload string, i int) string {
		t.Helper()
		for _, g := range emu.Groups() {
			if g.Tags[azure.TagInstance] == owner.Instance && g.Tags[azure.TagWorkload] == workload &&
				g.Tags[azure.TagReplica] == strconv.Itoa(i) {
				return g.Name
			}
		}
		t.Fatalf("no group of %s replica %d", workload, i)
		return ""
	}
	kv := keyvaultemu.New(keyvaultemu.Options{})
	t.Cleanup(kv.Close)
	cli := sdkClient(t, emu)
	emu.FailProbePath(unhealthyPath)
	kinds := []aciemu.Kind{aciemu.Throttle, aciemu.Conflict, aciemu.ServerError, aciemu.Failed, aciemu.Unavailable, aciemu.Slow}
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) providers.Provider { return newProviderKV(t, emu, kv) },
		// The reference app answers GREETING: the emulator runs no container, so the probe reads what each ready
		// group's container receives (a secure value included).
		Probe: func(_ context.Context, w schema.Workload) (string, error) {
			var out []string
			for _, g := range emu.Groups() {
				if g.Tags[azure.TagInstance] != owner.Instance || g.Tags[azure.TagWorkload] != w.Name || !g.Ready {
					continue
				}
				stored, _ := emu.Stored(testSub, testRG, g.Name)
				for _, e := range container(&stored).EnvironmentVariables {
					if *e.Name == "GREETING" {
						out = append(out, deref(e.Value)+deref(e.SecureValue))
					}
				}
			}
			if len(out) == 0 {
				return "", errors.New("no ready group of " + w.Name)
			}
			return strings.Join(out, "\n"), nil
		},
		// A Key Vault secret, each value a new version referenced explicitly.
		Secrets: &conformance.SecretsCase{
			Source: func(_ context.Context, _ *testing.T, name, value string) (schema.Secret, []byte) {
				ver := kv.SetSecret(testVault, name, value)
				return schema.Secret{Azure: &schema.AzureSecret{Vault: testVault, Name: name, Version: ver}}, nil
			},
			// Tags, and the groups as the API shows them (secure values and secret volumes hidden).
			Leaks: func(ctx context.Context, t *testing.T, workload, value string) string {
				for _, g := range emu.Groups() {
					if g.Tags[azure.TagWorkload] != workload {
						continue
					}
					if strings.Contains(js(g.Tags), value) {
						return "the tags of " + g.Name
					}
					got, err := cli.Get(ctx, testRG, g.Name, nil)
					if err != nil {
						t.Fatal(err)
					}
					if strings.Contains(js(got), value) {
						return "the GET view of " + g.Name
					}
				}
				return ""
			},
		},
		Target:   testTarget,
		Owner:    owner,
		Image:    "ghcr.io/berth-dev/quickstart:1",
		ImageV2:  "ghcr.io/berth-dev/quickstart:2",
		Workload: func(name string) schema.Workload { w := referenceWorkload(name); w.Replicas = 1; return w },
		Drift: func(_ context.Context, t *testing.T, workload string, i int, kind string) {
			name := find(t, workload, i)
			switch kind {
			case conformance.DriftRemove:
				emu.DeleteGroup(testSub, testRG, name)
			case conformance.DriftStop:
				emu.StopGroup(testSub, testRG, name)
			default:
				t.Fatalf("unknown drift kind %q", kind)
			}
		},
		LookAlike: func(_ context.Context, t *testing.T, workload string) func() bool {
			name := azure.GroupName(owner.Instance, owner.Environment, workload, 0, "lookalike")
			image, loc := "ghcr.io/berth-dev/quickstart:1", testLocation
			emu.PutGroup(testSub, testRG, name, armcontainerinstance.ContainerGroup{
				Location: &loc,
				Tags:     map[string]*string{"owner": &name},
				Properties: &armcontainerinstance.ContainerGroupPropertiesProperties{
					Containers: []*armcontainerinstance.Container{{Name: &name, Properties: &armcontainerinstance.ContainerProperties{Image: &image}}},
				},
			})
			t.Cleanup(func() { emu.DeleteGroup(testSub, testRG, name) })
			return func() bool { return emu.Exists(testSub, testRG, name) }
		},
		Tamper: map[string]func(context.Context, *testing.T, string){
			conformance.TamperImage: edit(cli, find, func(c *cg) { container(c).Image = to.Ptr("ghcr.io/berth-dev/quickstart:2") }),
			conformance.TamperCommand: edit(cli, find, func(c *cg) {
				container(c).Command = []*string{to.Ptr("/app"), to.Ptr("serve"), to.Ptr("--debug")}
			}),
			conformance.TamperEnv: edit(cli, find, func(c *cg) {
				for _, e := range container(c).EnvironmentVariables {
					if *e.Name == "GREETING" {
						e.Value = to.Ptr("by hand")
					}
				}
			}),
			conformance.TamperPorts: edit(cli, find, func(c *cg) {
				cp := container(c)
				cp.Ports = append(cp.Ports, &armcontainerinstance.ContainerPort{Port: to.Ptr[int32](9090), Protocol: to.Ptr(armcontainerinstance.ContainerNetworkProtocolTCP)})
				c.Properties.IPAddress.Ports = append(c.Properties.IPAddress.Ports,
					&armcontainerinstance.Port{Port: to.Ptr[int32](9090), Protocol: to.Ptr(armcontainerinstance.ContainerGroupNetworkProtocolTCP)})
			}),
			conformance.TamperHealth: edit(cli, find, func(c *cg) { container(c).LivenessProbe.FailureThreshold = to.Ptr[int32](9) }),
			// CPU and memory change only by recreating the group (ACI refuses them in an update), as the portal does.
			conformance.TamperResources: recreate(cli, find, func(c *cg) { container(c).Resources.Requests.MemoryInGB = to.Ptr(1.0) }),
			// An extra group with berth's tags, as a copy made in the portal would be.
			conformance.TamperReplicas: func(ctx context.Context, t *testing.T, workload string) {
				g := getGroup(ctx, t, cli, find(t, workload, 0))
				name := azure.GroupName(owner.Instance, owner.Environment, workload, 2, *g.Tags[azure.TagSpecHash])
				g.Tags[azure.TagReplica] = to.Ptr("2")
				g.Properties.IPAddress.DNSNameLabel = to.Ptr(name)
				putGroup(ctx, t, cli, name, g)
			},
			conformance.TamperObject + "DNS name label": edit(cli, find, func(c *cg) { c.Properties.IPAddress.DNSNameLabel = nil }),
		},
		Unmanaged: func(ctx context.Context, t *testing.T, workload string) func(context.Context) (bool, error) {
			name := find(t, workload, 0)
			edit(cli, func(*testing.T, string, int) string { return name }, func(c *cg) {
				c.Tags["cost-center"] = to.Ptr("4711")
			})(ctx, t, workload)
			return func(ctx context.Context) (bool, error) {
				g, err := cli.Get(ctx, testRG, name, nil)
				if err != nil {
					return false, err
				}
				v := g.Tags["cost-center"]
				return v != nil && *v == "4711", nil
			}
		},
		Unhealthy: unhealthy,
		Faults: func(n int) {
			for i := range n {
				emu.Fail(1, kinds[i%len(kinds)])
			}
		},
		Timeout: 60 * time.Second,
	})
}

type cg = armcontainerinstance.ContainerGroup

// sdkClient is the SDK's own container groups client on the emulator: the tamper hooks edit groups through it, as
// az container create or the portal would.
func sdkClient(t *testing.T, emu *aciemu.Server) *armcontainerinstance.ContainerGroupsClient {
	t.Helper()
	c := cloud.AzurePublic
	c.Services = map[cloud.ServiceName]cloud.ServiceConfiguration{
		cloud.ResourceManager: {Audience: "https://management.core.windows.net/", Endpoint: emu.URL()},
	}
	cli, err := armcontainerinstance.NewContainerGroupsClient(testSub, staticToken{}, &arm.ClientOptions{
		ClientOptions: policy.ClientOptions{Cloud: c, Transport: emu.Client(),
			Retry: policy.RetryOptions{MaxRetries: 3, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

func container(c *cg) *armcontainerinstance.ContainerProperties {
	return c.Properties.Containers[0].Properties
}

// getGroup reads a group and clears what the service fills in (read-only fields), as a client editing the group
// would send it back.
func getGroup(ctx context.Context, t *testing.T, cli *armcontainerinstance.ContainerGroupsClient, name string) *cg {
	t.Helper()
	resp, err := cli.Get(ctx, testRG, name, nil)
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	g := resp.ContainerGroup
	g.ID, g.Name, g.Type = nil, nil, nil
	g.Properties.InstanceView, g.Properties.ProvisioningState = nil, nil
	for _, c := range g.Properties.Containers {
		c.Properties.InstanceView = nil
	}
	if ip := g.Properties.IPAddress; ip != nil {
		ip.IP, ip.Fqdn = nil, nil
	}
	return &g
}

func putGroup(ctx context.Context, t *testing.T, cli *armcontainerinstance.ContainerGroupsClient, name string, g *cg) {
	t.Helper()
	poller, err := cli.BeginCreateOrUpdate(ctx, testRG, name, *g, nil)
	if err != nil {
		t.Fatalf("put %s: %v", name, err)
	}
	if _, err := poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: time.Millisecond}); err != nil {
		t.Fatalf("put %s: %v", name, err)
	}
}

// edit is a tamper hook: BeginCreateOrUpdate of replica 1's group with f applied (an update in place).
func edit(cli *armcontainerinstance.ContainerGroupsClient, find func(*testing.T, string, int) string, f func(*cg)) func(context.Context, *testing.T, string) {
	return func(ctx context.Context, t *testing.T, workload string) {
		name := find(t, workload, 1)
		g := getGroup(ctx, t, cli, name)
		f(g)
		putGroup(ctx, t, cli, name, g)
	}
}

// recreate is a tamper hook for what ACI changes only by recreating: replica 1's group is deleted and created
// again under its name with f applied.
func recreate(cli *armcontainerinstance.ContainerGroupsClient, find func(*testing.T, string, int) string, f func(*cg)) func(context.Context, *testing.T, string) {
	return func(ctx context.Context, t *testing.T, workload string) {
		name := find(t, workload, 1)
		g := getGroup(ctx, t, cli, name)
		poller, err := cli.BeginDelete(ctx, testRG, name, nil)
		if err != nil {
			t.Fatalf("delete %s: %v", name, err)
		}
		if _, err := poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: time.Millisecond}); err != nil {
			t.Fatalf("delete %s: %v", name, err)
		}
		f(g)
		putGroup(ctx, t, cli, name, g)
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// unhealthyPath is a path the emulated app answers 404 on (FailProbePath), as the quickstart app does.
const unhealthyPath = "/nonexistent"

// unhealthy points w's HTTP check at unhealthyPath.
func unhealthy(w schema.Workload) schema.Workload {
	h := *w.Health
	check := *h.HTTP
	check.Path = unhealthyPath
	h.HTTP = &check
	w.Health = &h
	return w
}
