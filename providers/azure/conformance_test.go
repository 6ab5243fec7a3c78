package azure_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerinstance/armcontainerinstance/v2"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/azure"
	"github.com/berth-dev/berth/providers/azure/aciemu"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/schema"
)

// TestConformance runs the shared provider suite with the real SDK client against the emulator.
func TestConformance(t *testing.T) {
	emu := aciemu.New(aciemu.Options{Images: []string{"ghcr.io/berth-dev/quickstart:1", "ghcr.io/berth-dev/quickstart:2"}})
	t.Cleanup(emu.Close)
	owner := providers.Owner{Instance: "conf", Environment: "dev"}
	find := func(t *testing.T, workload string, i int) string {
		for _, g := range emu.Groups() {
			if g.Tags[azure.TagInstance] == owner.Instance && g.Tags[azure.TagWorkload] == workload &&
				g.Tags[azure.TagReplica] == strconv.Itoa(i) {
				return g.Name
			}
		}
		t.Fatalf("no group of %s replica %d", workload, i)
		return ""
	}
	kinds := []aciemu.Kind{aciemu.Throttle, aciemu.Conflict, aciemu.ServerError, aciemu.Failed, aciemu.Unavailable, aciemu.Slow}
	conformance.Run(t, conformance.Harness{
		New:      func(t *testing.T) providers.Provider { return newProvider(t, emu) },
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
		Faults: func(n int) {
			for i := range n {
				emu.Fail(1, kinds[i%len(kinds)])
			}
		},
		Timeout: 60 * time.Second,
	})
}
