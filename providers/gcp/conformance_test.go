package gcp_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	compute "cloud.google.com/go/compute/apiv1"
	"cloud.google.com/go/compute/apiv1/computepb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/providers/gcp"
	"github.com/berth-dev/berth/providers/gcp/computeemu"
	"github.com/berth-dev/berth/schema"
)

// emulated starts an emulator and returns it with a target whose credentialsFile is a service-account key the
// emulator issues tokens for: the SDK authenticates for real, over HTTP, against the emulator.
func emulated(t *testing.T) (*computeemu.Server, schema.Target) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	emu := computeemu.New(computeemu.Options{})
	t.Cleanup(emu.Close)
	key, err := emu.ServiceAccountKey("berth@berth-test.iam.gserviceaccount.com")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return emu, schema.Target{Name: "gce", Type: "gcp", Settings: map[string]any{
		"project": emu.Project(), "region": emu.Region(), "endpoint": emu.URL(), "credentialsFile": path,
	}}
}

// newProvider builds a provider on the emulator with millisecond pacing.
func newProvider(t *testing.T, target schema.Target) *gcp.Provider {
	t.Helper()
	p, err := gcp.NewWithClientOptions(target, providers.Options{Instance: "conformance"})
	if err != nil {
		t.Fatal(err)
	}
	p.PollInterval, p.RetryBase, p.RetryMax = 2*time.Millisecond, time.Millisecond, 10*time.Millisecond
	t.Cleanup(func() { p.Close() })
	return p
}

// referenceWorkload is the quickstart's web workload, unchanged: one public port 8080, an HTTP health check of
// GET /healthz on 8080, 250m CPU and 64 MiB (an e2-micro), args ["serve"], 2 replicas.
func referenceWorkload(name string) schema.Workload {
	return schema.Workload{
		Name:      name,
		Provider:  "gce",
		Image:     "europe-docker.pkg.dev/berth/app:1",
		Args:      []string{"serve"},
		Env:       map[string]string{"GREETING": "hello", "PORT": "8080"},
		Ports:     []schema.Port{{Port: 8080, Protocol: "tcp", Public: true}},
		Health:    &schema.HealthCheck{HTTP: &schema.HTTPCheck{Path: "/healthz", Port: 8080}, Interval: schema.Duration(5 * time.Second), Timeout: schema.Duration(2 * time.Second), Retries: 3},
		Resources: schema.Resources{CPUMillis: 250, MemoryBytes: 64 << 20},
		Replicas:  2,
	}
}

// unhealthyEnv marks a version whose app fails its health check: the emulator's health hook (failUnhealthy) finds
// it in the instance's container declaration, as a real app of a broken version would answer 500 on /healthz.
const unhealthyEnv = "BERTH_TEST_UNHEALTHY"

// failUnhealthy is the emulator's health hook: a probe of an instance whose template's container declaration sets
// unhealthyEnv fails.
func failUnhealthy(pr computeemu.HealthProbe) bool {
	return !strings.Contains(declaration(pr.Template), unhealthyEnv)
}

func TestConformance(t *testing.T) {
	emu, target := emulated(t)
	sm, target := withSecretManager(t, emu, target)
	owner := providers.Owner{Instance: "cf1", Environment: "dev"}
	hand := byHand(t, emu, owner, option.WithAuthCredentialsFile(option.ServiceAccount, target.Settings["credentialsFile"].(string)))
	emu.SetHealth(failUnhealthy)
	conformance.Run(t, conformance.Harness{
		Unhealthy: func(w schema.Workload) schema.Workload {
			w.Env = maps.Clone(w.Env)
			w.Env[unhealthyEnv] = "1"
			return w
		},
		HoldFor: 3 * time.Second,
		// A Secret Manager secret, each value a new version referenced by its number.
		Secrets: &conformance.SecretsCase{
			Source: func(_ context.Context, t *testing.T, name, value string) (schema.Secret, []byte) {
				v, err := sm.AddVersion("projects/"+emu.Project()+"/secrets/"+name, []byte(value))
				if err != nil {
					t.Fatal(err)
				}
				return schema.Secret{GCP: &schema.GCPSecret{Name: "projects/" + emu.Project() + "/secrets/" + name,
					Version: v[strings.LastIndex(v, "/")+1:]}}, nil
			},
			// The value is in the container declaration, where Container-Optimized OS reads it; anywhere else
			// (labels, description, other metadata, the group) is a leak.
			Leaks: func(ctx context.Context, t *testing.T, workload, value string) string {
				tp := currentTemplate(ctx, t, hand, workload)
				if strings.Contains(outsideDeclaration(tp), value) {
					return "template " + tp.GetName() + " outside its container declaration"
				}
				if strings.Contains(js(hand.group(ctx, t, workload)), value) {
					return "the instance group"
				}
				return ""
			},
		},
		// What the load balancer serves: GREETING of the container declaration of an instance the backend
		// service finds healthy, behind the workload's forwarding rule.
		Probe: func(ctx context.Context, w schema.Workload) (string, error) {
			tp, err := hand.served(ctx, w.Name)
			if err != nil {
				return "", err
			}
			var decl struct {
				Spec struct {
					Containers []struct {
						Env []struct{ Name, Value string } `json:"env"`
					} `json:"containers"`
				} `json:"spec"`
			}
			if err := yaml.Unmarshal([]byte(declaration(tp)), &decl); err != nil || len(decl.Spec.Containers) == 0 {
				return "", fmt.Errorf("template %s: no container declaration", tp.GetName())
			}
			for _, e := range decl.Spec.Containers[0].Env {
				if e.Name == "GREETING" {
					return e.Value, nil
				}
			}
			return "", nil
		},
		New:      func(t *testing.T) providers.Provider { return newProvider(t, target) },
		Target:   target.Name,
		Owner:    owner,
		Image:    "europe-docker.pkg.dev/berth/app:1",
		ImageV2:  "europe-docker.pkg.dev/berth/app:2",
		Workload: referenceWorkload,
		Drift: func(_ context.Context, t *testing.T, workload string, i int, kind string) {
			var err error
			switch kind {
			case conformance.DriftRemove:
				err = emu.DeleteInstance(gcp.GroupName(owner, workload), i)
			case conformance.DriftStop:
				err = emu.StopInstance(gcp.GroupName(owner, workload), i)
			default:
				t.Fatalf("unknown drift kind %q", kind)
			}
			if err != nil {
				t.Fatal(err)
			}
		},
		LookAlike: func(_ context.Context, t *testing.T, workload string) func() bool {
			name := gcp.GroupName(owner, workload) + "-copy"
			emu.CreateUnowned(name, 1)
			return func() bool { return emu.GroupExists(name) }
		},
		Tamper: map[string]func(context.Context, *testing.T, string){
			conformance.TamperImage:   hand.container(func(c map[string]any) { c["image"] = "europe-docker.pkg.dev/berth/app:hand" }),
			conformance.TamperCommand: hand.container(func(c map[string]any) { c["command"] = []any{"/bin/app"} }),
			conformance.TamperArgs:    hand.container(func(c map[string]any) { c["args"] = []any{"debug"} }),
			conformance.TamperEnv: hand.container(func(c map[string]any) {
				c["env"] = []any{map[string]any{"name": "GREETING", "value": "by hand"}, map[string]any{"name": "PORT", "value": "8080"}}
			}),
			conformance.TamperPorts:                        hand.namedPorts(&computepb.NamedPort{Name: proto.String("tcp-9090"), Port: proto.Int32(9090)}),
			conformance.TamperReplicas:                     hand.resize(3),
			conformance.TamperObject + "instance template": hand.deleteTemplate,
			conformance.TamperHealth:                       hand.healthPath("/by-hand"),
			conformance.TamperResources: func(ctx context.Context, t *testing.T, workload string) {
				hand.copyTemplate(ctx, t, workload, func(pr *computepb.InstanceProperties) { pr.MachineType = proto.String("e2-standard-2") })
			},
			conformance.TamperObject + "forwarding rule": hand.deleteRule,
			conformance.TamperObject + "backend service": hand.deleteBackend,
		},
		Unmanaged: hand.unmanaged,
		Faults:    func(n int) { emu.Fail(n, computeemu.FaultThrottle) },
		Timeout:   60 * time.Second,
	})
}

// hand edits the emulator through the real SDK clients, as gcloud or the console would.
type hand struct {
	owner     providers.Owner
	project   string
	region    string
	templates *compute.InstanceTemplatesClient
	groups    *compute.RegionInstanceGroupManagersClient
	igs       *compute.RegionInstanceGroupsClient
	hcs       *compute.HealthChecksClient
	backends  *compute.RegionBackendServicesClient
	rules     *compute.ForwardingRulesClient
	n         int
}

// byHand returns SDK clients on emu with opts (the credentials).
func byHand(t *testing.T, emu *computeemu.Server, owner providers.Owner, opts ...option.ClientOption) *hand {
	t.Helper()
	ctx := context.Background()
	opts = append([]option.ClientOption{option.WithEndpoint(emu.URL())}, opts...)
	h := &hand{owner: owner, project: emu.Project(), region: emu.Region()}
	var err error
	if h.templates, err = compute.NewInstanceTemplatesRESTClient(ctx, opts...); err == nil {
		if h.groups, err = compute.NewRegionInstanceGroupManagersRESTClient(ctx, opts...); err == nil {
			h.igs, err = compute.NewRegionInstanceGroupsRESTClient(ctx, opts...)
		}
	}
	if err == nil {
		if h.hcs, err = compute.NewHealthChecksRESTClient(ctx, opts...); err == nil {
			if h.backends, err = compute.NewRegionBackendServicesRESTClient(ctx, opts...); err == nil {
				h.rules, err = compute.NewForwardingRulesRESTClient(ctx, opts...)
			}
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.templates.Close()
		h.groups.Close()
		h.igs.Close()
		h.hcs.Close()
		h.backends.Close()
		h.rules.Close()
	})
	return h
}

// wait polls an operation to its end (each poll is a request, which advances the emulator).
func wait(ctx context.Context, t *testing.T, op *compute.Operation, err error) {
	t.Helper()
	for err == nil && !op.Done() {
		err = op.Poll(ctx)
	}
	if err == nil && op.Proto().GetError() != nil {
		err = fmt.Errorf("operation failed: %v", op.Proto().GetError())
	}
	if err != nil {
		t.Fatal(err)
	}
}

func (h *hand) group(ctx context.Context, t *testing.T, workload string) *computepb.InstanceGroupManager {
	t.Helper()
	g, err := h.groups.Get(ctx, &computepb.GetRegionInstanceGroupManagerRequest{Project: h.project, Region: h.region,
		InstanceGroupManager: gcp.GroupName(h.owner, workload)})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// copyTemplate inserts a copy of the group's current template under a new name, with edit applied to its
// properties, and rolls the group to it (gcloud compute instance-groups managed rolling-action start-update).
// It returns the name of the template the group ran before.
func (h *hand) copyTemplate(ctx context.Context, t *testing.T, workload string, edit func(*computepb.InstanceProperties)) string {
	t.Helper()
	g := h.group(ctx, t, workload)
	old := g.GetVersions()[0].GetInstanceTemplate()
	old = old[strings.LastIndex(old, "/")+1:]
	cur, err := h.templates.Get(ctx, &computepb.GetInstanceTemplateRequest{Project: h.project, InstanceTemplate: old})
	if err != nil {
		t.Fatal(err)
	}
	h.n++
	name := fmt.Sprintf("%s-hand%d", gcp.GroupName(h.owner, workload), h.n)
	cp := &computepb.InstanceTemplate{Name: proto.String(name), Description: cur.Description,
		Properties: proto.Clone(cur.GetProperties()).(*computepb.InstanceProperties)}
	edit(cp.Properties)
	op, err := h.templates.Insert(ctx, &computepb.InsertInstanceTemplateRequest{Project: h.project, InstanceTemplateResource: cp})
	wait(ctx, t, op, err)
	op, err = h.groups.Patch(ctx, &computepb.PatchRegionInstanceGroupManagerRequest{Project: h.project, Region: h.region,
		InstanceGroupManager: g.GetName(), InstanceGroupManagerResource: &computepb.InstanceGroupManager{
			Versions: []*computepb.InstanceGroupManagerVersion{{InstanceTemplate: proto.String("global/instanceTemplates/" + name)}}}})
	wait(ctx, t, op, err)
	return old
}

// container is a Tamper hook rolling the group to a copy of its template whose container declaration edit
// changed, rewritten as YAML in the style of another tool.
func (h *hand) container(edit func(c map[string]any)) func(context.Context, *testing.T, string) {
	return func(ctx context.Context, t *testing.T, workload string) {
		h.copyTemplate(ctx, t, workload, func(pr *computepb.InstanceProperties) {
			for _, it := range pr.GetMetadata().GetItems() {
				if it.GetKey() != "gce-container-declaration" {
					continue
				}
				var decl map[string]any
				if err := yaml.Unmarshal([]byte(it.GetValue()), &decl); err != nil {
					t.Fatal(err)
				}
				edit(decl["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any))
				b, err := yaml.Marshal(decl)
				if err != nil {
					t.Fatal(err)
				}
				it.Value = proto.String("# edited by hand\n" + string(b))
			}
		})
	}
}

// namedPorts sets the instance group's named ports (gcloud compute instance-groups set-named-ports).
func (h *hand) namedPorts(ps ...*computepb.NamedPort) func(context.Context, *testing.T, string) {
	return func(ctx context.Context, t *testing.T, workload string) {
		op, err := h.igs.SetNamedPorts(ctx, &computepb.SetNamedPortsRegionInstanceGroupRequest{Project: h.project, Region: h.region,
			InstanceGroup: gcp.GroupName(h.owner, workload),
			RegionInstanceGroupsSetNamedPortsRequestResource: &computepb.RegionInstanceGroupsSetNamedPortsRequest{NamedPorts: ps}})
		wait(ctx, t, op, err)
	}
}

// resize sets the group's target size (gcloud compute instance-groups managed resize).
func (h *hand) resize(n int32) func(context.Context, *testing.T, string) {
	return func(ctx context.Context, t *testing.T, workload string) {
		op, err := h.groups.Resize(ctx, &computepb.ResizeRegionInstanceGroupManagerRequest{Project: h.project, Region: h.region,
			InstanceGroupManager: gcp.GroupName(h.owner, workload), Size: n})
		wait(ctx, t, op, err)
	}
}

// deleteTemplate deletes the template berth made for the spec, the only way GCE allows: roll the group to an exact
// copy first (a template in use cannot be deleted).
func (h *hand) deleteTemplate(ctx context.Context, t *testing.T, workload string) {
	old := h.copyTemplate(ctx, t, workload, func(*computepb.InstanceProperties) {})
	op, err := h.templates.Delete(ctx, &computepb.DeleteInstanceTemplateRequest{Project: h.project, InstanceTemplate: old})
	wait(ctx, t, op, err)
}

// unmanaged patches a group field berth never sets (listManagedInstancesResults).
func (h *hand) unmanaged(ctx context.Context, t *testing.T, workload string) func(context.Context) (bool, error) {
	op, err := h.groups.Patch(ctx, &computepb.PatchRegionInstanceGroupManagerRequest{Project: h.project, Region: h.region,
		InstanceGroupManager:         gcp.GroupName(h.owner, workload),
		InstanceGroupManagerResource: &computepb.InstanceGroupManager{ListManagedInstancesResults: proto.String("PAGINATED")}})
	wait(ctx, t, op, err)
	return func(ctx context.Context) (bool, error) {
		g, err := h.groups.Get(ctx, &computepb.GetRegionInstanceGroupManagerRequest{Project: h.project, Region: h.region,
			InstanceGroupManager: gcp.GroupName(h.owner, workload)})
		return err == nil && g.GetListManagedInstancesResults() == "PAGINATED", err
	}
}

// served is the template of an instance the workload's load balancer sends traffic to: its forwarding rule exists,
// and its backend service finds the instance healthy (the first by name).
func (h *hand) served(ctx context.Context, workload string) (*computepb.InstanceTemplate, error) {
	name := gcp.GroupName(h.owner, workload) + "-tcp"
	if _, err := h.rules.Get(ctx, &computepb.GetForwardingRuleRequest{Project: h.project, Region: h.region, ForwardingRule: name}); err != nil {
		return nil, err
	}
	group := gcp.GroupName(h.owner, workload)
	health, err := h.backends.GetHealth(ctx, &computepb.GetHealthRegionBackendServiceRequest{Project: h.project, Region: h.region, BackendService: name,
		ResourceGroupReferenceResource: &computepb.ResourceGroupReference{Group: proto.String(fmt.Sprintf("projects/%s/regions/%s/instanceGroups/%s", h.project, h.region, group))}})
	if err != nil {
		return nil, err
	}
	var healthy []string
	for _, st := range health.GetHealthStatus() {
		if st.GetHealthState() == "HEALTHY" {
			healthy = append(healthy, st.GetInstance()[strings.LastIndex(st.GetInstance(), "/")+1:])
		}
	}
	if len(healthy) == 0 {
		return nil, fmt.Errorf("backend service %s has no healthy instance", name)
	}
	sort.Strings(healthy)
	templates := map[string]string{}
	it := h.groups.ListManagedInstances(ctx, &computepb.ListManagedInstancesRegionInstanceGroupManagersRequest{Project: h.project, Region: h.region, InstanceGroupManager: group})
	for {
		mi, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, err
		}
		templates[mi.GetName()] = mi.GetVersion().GetInstanceTemplate()
	}
	for _, in := range healthy { // the first healthy instance still in the group
		if ref := templates[in]; ref != "" {
			return h.templates.Get(ctx, &computepb.GetInstanceTemplateRequest{Project: h.project, InstanceTemplate: ref[strings.LastIndex(ref, "/")+1:]})
		}
	}
	return nil, fmt.Errorf("the healthy instances %v of %s are gone", healthy, group)
}

// healthPath changes the request path of the workload's health check (gcloud compute health-checks update http).
func (h *hand) healthPath(path string) func(context.Context, *testing.T, string) {
	return func(ctx context.Context, t *testing.T, workload string) {
		op, err := h.hcs.Patch(ctx, &computepb.PatchHealthCheckRequest{Project: h.project, HealthCheck: gcp.GroupName(h.owner, workload),
			HealthCheckResource: &computepb.HealthCheck{Type: proto.String("HTTP"), HttpHealthCheck: &computepb.HTTPHealthCheck{Port: proto.Int32(8080), RequestPath: proto.String(path)}}})
		wait(ctx, t, op, err)
	}
}

// deleteRule deletes the workload's forwarding rule (gcloud compute forwarding-rules delete).
func (h *hand) deleteRule(ctx context.Context, t *testing.T, workload string) {
	op, err := h.rules.Delete(ctx, &computepb.DeleteForwardingRuleRequest{Project: h.project, Region: h.region, ForwardingRule: gcp.GroupName(h.owner, workload) + "-tcp"})
	wait(ctx, t, op, err)
}

// deleteBackend deletes the workload's backend service, the way GCE allows: its forwarding rule first.
func (h *hand) deleteBackend(ctx context.Context, t *testing.T, workload string) {
	h.deleteRule(ctx, t, workload)
	op, err := h.backends.Delete(ctx, &computepb.DeleteRegionBackendServiceRequest{Project: h.project, Region: h.region, BackendService: gcp.GroupName(h.owner, workload) + "-tcp"})
	wait(ctx, t, op, err)
}
