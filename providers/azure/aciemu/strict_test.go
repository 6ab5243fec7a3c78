package aciemu_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"

	"github.com/berth-dev/berth/providers/azure/aciemu"
)

type token struct{}

func (token) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "t", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// client is the SDK's container groups client on s.
func client(t *testing.T, s *aciemu.Server) *armcontainerinstance.ContainerGroupsClient {
	t.Helper()
	c := cloud.AzurePublic
	c.Services = map[cloud.ServiceName]cloud.ServiceConfiguration{
		cloud.ResourceManager: {Audience: "https://management.core.windows.net/", Endpoint: s.URL()},
	}
	cli, err := armcontainerinstance.NewContainerGroupsClient("s", token{}, &arm.ClientOptions{
		ClientOptions: policy.ClientOptions{Cloud: c, Transport: s.Client(), Retry: policy.RetryOptions{MaxRetries: -1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

// valid is a group the emulator accepts, with every field berth sends set.
func valid() armcontainerinstance.ContainerGroup {
	probe := func() *armcontainerinstance.ContainerProbe {
		return &armcontainerinstance.ContainerProbe{
			HTTPGet:       &armcontainerinstance.ContainerHTTPGet{Path: to.Ptr("/healthz"), Port: to.Ptr[int32](8080), Scheme: to.Ptr(armcontainerinstance.SchemeHTTP)},
			PeriodSeconds: to.Ptr[int32](5), TimeoutSeconds: to.Ptr[int32](2), FailureThreshold: to.Ptr[int32](3), SuccessThreshold: to.Ptr[int32](1),
			InitialDelaySeconds: to.Ptr[int32](0),
		}
	}
	return armcontainerinstance.ContainerGroup{
		Location: to.Ptr("westeurope"),
		Tags:     map[string]*string{"a": to.Ptr("b")},
		Properties: &armcontainerinstance.ContainerGroupPropertiesProperties{
			OSType:        to.Ptr(armcontainerinstance.OperatingSystemTypesLinux),
			RestartPolicy: to.Ptr(armcontainerinstance.ContainerGroupRestartPolicyAlways),
			Containers: []*armcontainerinstance.Container{{Name: to.Ptr("web"), Properties: &armcontainerinstance.ContainerProperties{
				Image:   to.Ptr("img:1"),
				Command: []*string{to.Ptr("/app"), to.Ptr("serve")},
				EnvironmentVariables: []*armcontainerinstance.EnvironmentVariable{{Name: to.Ptr("GREETING"), Value: to.Ptr("hi")},
					{Name: to.Ptr("API_TOKEN"), SecureValue: to.Ptr("s")}},
				Ports:          []*armcontainerinstance.ContainerPort{{Port: to.Ptr[int32](8080), Protocol: to.Ptr(armcontainerinstance.ContainerNetworkProtocolTCP)}},
				Resources:      &armcontainerinstance.ResourceRequirements{Requests: &armcontainerinstance.ResourceRequests{CPU: to.Ptr(0.5), MemoryInGB: to.Ptr(1.5)}},
				LivenessProbe:  probe(),
				ReadinessProbe: probe(),
			}}},
			IPAddress: &armcontainerinstance.IPAddress{Type: to.Ptr(armcontainerinstance.ContainerGroupIPAddressTypePublic), DNSNameLabel: to.Ptr("web-label-0"),
				Ports: []*armcontainerinstance.Port{{Port: to.Ptr[int32](8080), Protocol: to.Ptr(armcontainerinstance.ContainerGroupNetworkProtocolTCP)}}},
		},
	}
}

func put(ctx context.Context, cli *armcontainerinstance.ContainerGroupsClient, name string, g armcontainerinstance.ContainerGroup) error {
	poller, err := cli.BeginCreateOrUpdate(ctx, "rg", name, g, nil)
	if err != nil {
		return err
	}
	_, err = poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: time.Millisecond})
	return err
}

// TestRefusals: each request the service refuses is refused through the real SDK with HTTP 400 and ARM's error code
// (an *azcore.ResponseError), and nothing is created.
func TestRefusals(t *testing.T) {
	type cg = armcontainerinstance.ContainerGroup
	c0 := func(g *cg) *armcontainerinstance.ContainerProperties { return g.Properties.Containers[0].Properties }
	for _, c := range []struct {
		name, code string
		change     func(g *cg)
	}{
		{"location missing", "LocationRequired", func(g *cg) { g.Location = nil }},
		{"containers missing", "InvalidRequestContent", func(g *cg) { g.Properties.Containers = nil }},
		{"osType missing", "InvalidRequestContent", func(g *cg) { g.Properties.OSType = nil }},
		{"osType enum", "InvalidRequestContent", func(g *cg) { g.Properties.OSType = to.Ptr(armcontainerinstance.OperatingSystemTypes("Solaris")) }},
		{"restartPolicy enum", "InvalidRequestContent", func(g *cg) {
			g.Properties.RestartPolicy = to.Ptr(armcontainerinstance.ContainerGroupRestartPolicy("Sometimes"))
		}},
		{"sku enum", "InvalidRequestContent", func(g *cg) { g.Properties.SKU = to.Ptr(armcontainerinstance.ContainerGroupSKU("Huge")) }},
		{"container name missing", "InvalidRequestContent", func(g *cg) { g.Properties.Containers[0].Name = nil }},
		{"container name", "InvalidContainerName", func(g *cg) { g.Properties.Containers[0].Name = to.Ptr("Web_1") }},
		{"image missing", "InvalidRequestContent", func(g *cg) { c0(g).Image = nil }},
		{"resources missing", "InvalidRequestContent", func(g *cg) { c0(g).Resources = nil }},
		{"cpu missing", "InvalidRequestContent", func(g *cg) { c0(g).Resources.Requests.CPU = nil }},
		{"memory missing", "InvalidRequestContent", func(g *cg) { c0(g).Resources.Requests.MemoryInGB = nil }},
		{"cpu too big", "ResourceRequestsNotSupported", func(g *cg) { c0(g).Resources.Requests.CPU = to.Ptr(8.0) }},
		{"cpu step", "ResourceRequestsNotSupported", func(g *cg) { c0(g).Resources.Requests.CPU = to.Ptr(0.005) }},
		{"memory too big", "ResourceRequestsNotSupported", func(g *cg) { c0(g).Resources.Requests.MemoryInGB = to.Ptr(32.0) }},
		{"memory step", "ResourceRequestsNotSupported", func(g *cg) { c0(g).Resources.Requests.MemoryInGB = to.Ptr(0.25) }},
		{"env name", "InvalidEnvironmentVariable", func(g *cg) { c0(g).EnvironmentVariables[0].Name = to.Ptr("my.var") }},
		{"container port range", "InvalidContainerPorts", func(g *cg) { c0(g).Ports[0].Port = to.Ptr[int32](0) }},
		{"container port protocol enum", "InvalidRequestContent", func(g *cg) {
			c0(g).Ports[0].Protocol = to.Ptr(armcontainerinstance.ContainerNetworkProtocol("SCTP"))
		}},
		{"ip type missing", "InvalidRequestContent", func(g *cg) { g.Properties.IPAddress.Type = nil }},
		{"ip ports missing", "InvalidRequestContent", func(g *cg) { g.Properties.IPAddress.Ports = nil }},
		{"ip type enum", "InvalidRequestContent", func(g *cg) {
			g.Properties.IPAddress.Type = to.Ptr(armcontainerinstance.ContainerGroupIPAddressType("Internal"))
		}},
		{"private ip without subnet", "PrivateIPAddressNotSupported", func(g *cg) {
			g.Properties.IPAddress.Type = to.Ptr(armcontainerinstance.ContainerGroupIPAddressTypePrivate)
		}},
		{"ip port protocol enum", "InvalidRequestContent", func(g *cg) {
			g.Properties.IPAddress.Ports[0].Protocol = to.Ptr(armcontainerinstance.ContainerGroupNetworkProtocol("SCTP"))
		}},
		{"ip port not exposed", "InvalidIpAddressPorts", func(g *cg) { g.Properties.IPAddress.Ports[0].Port = to.Ptr[int32](9090) }},
		{"dns label starts with a digit", "InvalidDnsNameLabel", func(g *cg) { g.Properties.IPAddress.DNSNameLabel = to.Ptr("1-web-label") }},
		{"dns label too short", "InvalidDnsNameLabel", func(g *cg) { g.Properties.IPAddress.DNSNameLabel = to.Ptr("web") }},
		{"dns label upper case", "InvalidDnsNameLabel", func(g *cg) { g.Properties.IPAddress.DNSNameLabel = to.Ptr("Web-label") }},
		{"dns reuse policy enum", "InvalidRequestContent", func(g *cg) {
			g.Properties.IPAddress.AutoGeneratedDomainNameLabelScope = to.Ptr(armcontainerinstance.DNSNameLabelReusePolicy("Anyone"))
		}},
		{"scheme enum", "InvalidRequestContent", func(g *cg) { c0(g).LivenessProbe.HTTPGet.Scheme = to.Ptr(armcontainerinstance.Scheme("ftp")) }},
		{"probe without check", "InvalidContainerProbe", func(g *cg) { c0(g).ReadinessProbe.HTTPGet = nil }},
		{"probe with two checks", "InvalidContainerProbe", func(g *cg) {
			c0(g).ReadinessProbe.Exec = &armcontainerinstance.ContainerExec{Command: []*string{to.Ptr("true")}}
		}},
		{"probe empty exec", "InvalidContainerProbe", func(g *cg) {
			c0(g).ReadinessProbe.HTTPGet, c0(g).ReadinessProbe.Exec = nil, &armcontainerinstance.ContainerExec{}
		}},
		{"probe http port", "InvalidContainerProbe", func(g *cg) { c0(g).LivenessProbe.HTTPGet.Port = to.Ptr[int32](70000) }},
		{"probe period", "InvalidContainerProbe", func(g *cg) { c0(g).LivenessProbe.PeriodSeconds = to.Ptr[int32](0) }},
		{"probe timeout", "InvalidContainerProbe", func(g *cg) { c0(g).ReadinessProbe.TimeoutSeconds = to.Ptr[int32](0) }},
		{"probe failure threshold", "InvalidContainerProbe", func(g *cg) { c0(g).ReadinessProbe.FailureThreshold = to.Ptr[int32](0) }},
		{"probe initial delay", "InvalidContainerProbe", func(g *cg) { c0(g).ReadinessProbe.InitialDelaySeconds = to.Ptr[int32](-1) }},
		{"51 tags", "InvalidTagCount", func(g *cg) {
			for i := range aciemu.MaxTags {
				g.Tags[fmt.Sprintf("t%d", i)] = to.Ptr("v")
			}
		}},
		{"tag name too long", "InvalidTagNameLength", func(g *cg) { g.Tags[strings.Repeat("n", 513)] = to.Ptr("v") }},
		{"tag value too long", "InvalidTagValueLength", func(g *cg) { g.Tags["a"] = to.Ptr(strings.Repeat("v", 257)) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := aciemu.New(aciemu.Options{})
			t.Cleanup(s.Close)
			cli := client(t, s)
			g := valid()
			c.change(&g)
			err := put(context.Background(), cli, "g1", g)
			var re *azcore.ResponseError
			if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest || re.ErrorCode != c.code {
				t.Fatalf("PUT: %v, want HTTP 400 %s", err, c.code)
			}
			if s.Exists("s", "rg", "g1") {
				t.Fatal("a refused group was created")
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		s := aciemu.New(aciemu.Options{})
		t.Cleanup(s.Close)
		if err := put(context.Background(), client(t, s), "g1", valid()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDNSLabelUnique: a DNS name label is unique in its location while its group exists, across resource groups;
// the same label in another location, or again once the group is gone, is accepted.
func TestDNSLabelUnique(t *testing.T) {
	s := aciemu.New(aciemu.Options{})
	t.Cleanup(s.Close)
	cli := client(t, s)
	ctx := context.Background()
	if err := put(ctx, cli, "g1", valid()); err != nil {
		t.Fatal(err)
	}
	err := put(ctx, cli, "g2", valid())
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest || re.ErrorCode != "DnsNameLabelNotAvailable" {
		t.Fatalf("PUT of a taken label: %v, want HTTP 400 DnsNameLabelNotAvailable", err)
	}
	if err := put(ctx, cli, "g1", valid()); err != nil { // its own label, again
		t.Fatal(err)
	}
	elsewhere := valid()
	elsewhere.Location = to.Ptr("northeurope")
	if err := put(ctx, cli, "g3", elsewhere); err != nil {
		t.Fatalf("the label in another location: %v", err)
	}
	s.DeleteGroup("s", "rg", "g1")
	if err := put(ctx, cli, "g2", valid()); err != nil {
		t.Fatalf("the label once its group is gone: %v", err)
	}
}

// TestUpdateRefusals: an update in place of what the service changes only by recreating the group is refused;
// other fields update in place.
func TestUpdateRefusals(t *testing.T) {
	type cg = armcontainerinstance.ContainerGroup
	for _, c := range []struct {
		name, code string
		change     func(g *cg)
	}{
		{"cpu", "InvalidContainerGroupUpdate", func(g *cg) { g.Properties.Containers[0].Properties.Resources.Requests.CPU = to.Ptr(1.0) }},
		{"memory", "InvalidContainerGroupUpdate", func(g *cg) {
			g.Properties.Containers[0].Properties.Resources.Requests.MemoryInGB = to.Ptr(2.0)
		}},
		{"restart policy", "InvalidContainerGroupUpdate", func(g *cg) {
			g.Properties.RestartPolicy = to.Ptr(armcontainerinstance.ContainerGroupRestartPolicyNever)
		}},
		{"ip address removed", "InvalidContainerGroupUpdate", func(g *cg) { g.Properties.IPAddress = nil }},
		{"image", "", func(g *cg) { g.Properties.Containers[0].Properties.Image = to.Ptr("img:2") }},
		{"dns label", "", func(g *cg) { g.Properties.IPAddress.DNSNameLabel = to.Ptr("other-label") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := aciemu.New(aciemu.Options{})
			t.Cleanup(s.Close)
			cli := client(t, s)
			ctx := context.Background()
			if err := put(ctx, cli, "g1", valid()); err != nil {
				t.Fatal(err)
			}
			g := valid()
			c.change(&g)
			err := put(ctx, cli, "g1", g)
			var re *azcore.ResponseError
			switch {
			case c.code == "" && err != nil:
				t.Fatalf("update in place: %v", err)
			case c.code != "" && (!errors.As(err, &re) || re.StatusCode != http.StatusBadRequest || re.ErrorCode != c.code):
				t.Fatalf("update in place: %v, want HTTP 400 %s", err, c.code)
			}
		})
	}
}

// TestListShape: ListByResourceGroup answers without any instance view (the group's and the containers'); Get has
// both, and neither returns secure values.
func TestListShape(t *testing.T) {
	s := aciemu.New(aciemu.Options{ListLag: -1, StartTicks: -1})
	t.Cleanup(s.Close)
	cli := client(t, s)
	ctx := context.Background()
	if err := put(ctx, cli, "g1", valid()); err != nil {
		t.Fatal(err)
	}
	got, err := cli.Get(ctx, "rg", "g1", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := got.Properties
	if p.InstanceView == nil || p.InstanceView.State == nil || p.Containers[0].Properties.InstanceView == nil {
		t.Fatalf("Get: no instance view: %+v", p)
	}
	pager := cli.NewListByResourceGroupPager("rg", nil)
	var n int
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range page.Value {
			n++
			if g.Properties.InstanceView != nil || g.Properties.Containers[0].Properties.InstanceView != nil {
				t.Errorf("list result %s carries an instance view", *g.Name)
			}
			if g.Properties.ProvisioningState == nil || *g.Properties.ProvisioningState != "Succeeded" {
				t.Errorf("list result %s: provisioningState %v", *g.Name, g.Properties.ProvisioningState)
			}
			for _, e := range g.Properties.Containers[0].Properties.EnvironmentVariables {
				if e.SecureValue != nil {
					t.Errorf("list result returns the secure value of %s", *e.Name)
				}
			}
		}
	}
	if n != 1 {
		t.Fatalf("list: %d groups, want 1", n)
	}
}

// TestSetState: the provisioning states are the specification's; the inspector sees the one set.
func TestSetState(t *testing.T) {
	s := aciemu.New(aciemu.Options{})
	t.Cleanup(s.Close)
	if err := put(context.Background(), client(t, s), "g1", valid()); err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"Unhealthy", "NotAccessible", "Repairing"} {
		if !s.SetState("s", "rg", "g1", st) || s.Groups()[0].ProvisioningState != st {
			t.Errorf("SetState %s: %+v", st, s.Groups())
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("SetState accepted a state the specification does not define")
		}
	}()
	s.SetState("s", "rg", "g1", "Sleeping")
}
