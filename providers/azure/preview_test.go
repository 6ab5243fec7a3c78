package azure_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure"
	"github.com/berth-dev/berth/providers/azure/aciemu"
	"github.com/berth-dev/berth/schema"
)

const previewHead = "0123456789abcdef0123456789abcdef01234567"

// listed lists o's workloads until one shows with every replica ready (a new group is missing from the first list).
func listed(t *testing.T, p *azure.Provider, o providers.Owner) []providers.Observed {
	t.Helper()
	for range 50 {
		obs, err := p.List(context.Background(), o, testTarget)
		if err != nil {
			t.Fatal(err)
		}
		if len(obs) > 0 {
			return obs
		}
	}
	t.Fatalf("List %s shows nothing", o.Environment)
	return nil
}

// TestPreview: a preview beside its base, with the same spec: its groups carry the preview and head tags (the
// base's do not), their own names and DNS labels (unique in the region: the emulator refuses a taken one), each List
// sees only its own environment, Endpoints are the groups' FQDNs with the port, and Environments is one list.
func TestPreview(t *testing.T) {
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	p := newProvider(t, emu)
	ctx := context.Background()
	base := providers.Owner{Instance: "i", Environment: "staging"}
	pr := providers.Owner{Instance: "i", Environment: schema.PreviewName(42), Preview: 42}
	w := referenceWorkload("web")
	w.Replicas = 1
	if err := p.Apply(ctx, providers.Desired{Owner: base, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w)}); err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(ctx, providers.Desired{Owner: pr, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w),
		Preview: &schema.Preview{Number: 42, Head: previewHead, Base: base.Environment}}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{}
	for _, g := range emu.Groups() {
		env := g.Tags[azure.TagEnvironment]
		switch {
		case env == pr.Environment && (g.Tags[azure.TagPreview] != "42" || g.Tags[azure.TagHead] != previewHead):
			t.Errorf("preview group %s tags %v", g.Name, g.Tags)
		case env == base.Environment && (g.Tags[azure.TagPreview] != "" || g.Tags[azure.TagHead] != ""):
			t.Errorf("base group %s tags %v", g.Name, g.Tags)
		}
		stored, _ := emu.Stored(testSub, testRG, g.Name)
		labels[env] = *stored.Properties.IPAddress.DNSNameLabel
	}
	if labels[base.Environment] == labels[pr.Environment] || !strings.HasPrefix(labels[pr.Environment], "berthtest-i-pr-42-web-0-") {
		t.Errorf("DNS labels %v: want the preview's own", labels)
	}
	for _, o := range []providers.Owner{base, pr} {
		obs := listed(t, p, o)
		if len(obs) != 1 || len(obs[0].Replicas) != 1 || !strings.Contains(obs[0].Replicas[0].Name, "-"+o.Environment+"-") {
			t.Fatalf("List %s: %+v", o.Environment, obs)
		}
		want := []providers.Endpoint{{Port: 8080, Address: labels[o.Environment] + ".westeurope.azurecontainer.io:8080"}}
		if got := obs[0].Endpoints; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: endpoints %+v, want %+v", o.Environment, got, want)
		}
	}
	emu.ResetRequests()
	refs, err := p.Environments(ctx, "i", testTarget)
	if err != nil {
		t.Fatal(err)
	}
	if want := []providers.EnvironmentRef{{Name: "pr-42", Preview: 42, Head: previewHead}, {Name: "staging"}}; fmt.Sprint(refs) != fmt.Sprint(want) {
		t.Errorf("Environments = %+v, want %+v", refs, want)
	}
	if n := len(emu.Requests()); n != 1 {
		t.Errorf("Environments made %d requests, want 1 list", n)
	}
	if refs, err := p.Environments(ctx, "other", testTarget); err != nil || len(refs) != 0 {
		t.Errorf("Environments of another instance: %+v, %v", refs, err)
	}
	if err := p.Delete(ctx, pr, testTarget, "web"); err != nil {
		t.Fatal(err)
	}
	if obs := listed(t, p, base); len(obs) != 1 {
		t.Errorf("deleting the preview touched the base: %+v", obs)
	}
}

// newProviderNoDNS is newProvider on a target without a DNS label prefix.
func newProviderNoDNS(t *testing.T, emu *aciemu.Server) *azure.Provider {
	t.Helper()
	tgt := testTargetFor(emu)
	delete(tgt.Settings, "dnsLabelPrefix")
	p, err := azure.NewWithCredential(tgt, providers.Options{}, staticToken{}, &arm.ClientOptions{
		ClientOptions: policy.ClientOptions{Transport: emu.Client(),
			Retry: policy.RetryOptions{MaxRetries: 3, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p.PollInterval = time.Millisecond
	p.RetryBase, p.RetryMax, p.RetryBudget = time.Millisecond, 10*time.Millisecond, 30*time.Second
	p.ReadyTimeout = 30 * time.Second
	return p
}

// TestEndpointsIP: without a DNS label the endpoint is the group's IP; a group that does not run gives none.
func TestEndpointsIP(t *testing.T) {
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	p := newProviderNoDNS(t, emu)
	owner := providers.Owner{Instance: "i", Environment: "e"}
	w := referenceWorkload("web")
	w.Replicas = 1
	if err := p.Apply(context.Background(), providers.Desired{Owner: owner, Target: testTarget, Workload: w,
		SpecHash: providers.SpecHash(w)}); err != nil {
		t.Fatal(err)
	}
	obs := listed(t, p, owner)
	if e := obs[0].Endpoints; len(e) != 1 || e[0].Port != 8080 || !strings.HasPrefix(e[0].Address, "20.0.") || !strings.HasSuffix(e[0].Address, ":8080") {
		t.Errorf("endpoints %+v, want the group's IP with port 8080", e)
	}
	emu.StopGroup(testSub, testRG, obs[0].Replicas[0].Name)
	obs = listed(t, p, owner)
	if e := obs[0].Endpoints; len(e) != 0 {
		t.Errorf("a stopped group's endpoints: %+v", e)
	}
}

// TestDNSLabelTaken: a DNS name label held by another group in the region is refused, permanently.
func TestDNSLabelTaken(t *testing.T) {
	emu := aciemu.New(aciemu.Options{})
	t.Cleanup(emu.Close)
	p := newProvider(t, emu)
	owner := providers.Owner{Instance: "i", Environment: "e"}
	w := referenceWorkload("web")
	w.Replicas = 1
	d := providers.Desired{Owner: owner, Target: testTarget, Workload: w, SpecHash: providers.SpecHash(w)}
	if err := p.Apply(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	stored, _ := emu.Stored(testSub, testRG, azure.GroupName("i", "e", "web", 0, d.SpecHash))
	image, loc := "ghcr.io/berth-dev/quickstart:1", testLocation
	cli := sdkClient(t, emu)
	poller, err := cli.BeginCreateOrUpdate(context.Background(), testRG, "squatter", armcontainerinstance.ContainerGroup{
		Location: &loc,
		Properties: &armcontainerinstance.ContainerGroupPropertiesProperties{
			OSType: to.Ptr(armcontainerinstance.OperatingSystemTypesLinux),
			Containers: []*armcontainerinstance.Container{{Name: to.Ptr("app"), Properties: &armcontainerinstance.ContainerProperties{
				Image: &image, Ports: []*armcontainerinstance.ContainerPort{{Port: to.Ptr[int32](80)}},
				Resources: &armcontainerinstance.ResourceRequirements{Requests: &armcontainerinstance.ResourceRequests{CPU: to.Ptr(1.0), MemoryInGB: to.Ptr(1.0)}}}}},
			IPAddress: &armcontainerinstance.IPAddress{Type: to.Ptr(armcontainerinstance.ContainerGroupIPAddressTypePublic),
				DNSNameLabel: stored.Properties.IPAddress.DNSNameLabel, Ports: []*armcontainerinstance.Port{{Port: to.Ptr[int32](80)}}},
		},
	}, nil)
	if err == nil {
		t.Fatalf("a taken DNS label was accepted (poller %v)", poller)
	}
	if !strings.Contains(err.Error(), "DnsNameLabelNotAvailable") {
		t.Errorf("error %v, want DnsNameLabelNotAvailable", err)
	}
}
