package aws_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/berth-dev/berth/providers"
	berthaws "github.com/berth-dev/berth/providers/aws"
	"github.com/berth-dev/berth/providers/aws/ecsemu"
	"github.com/berth-dev/berth/schema"
)

const (
	headV1 = "1111111111111111111111111111111111111111"
	headV2 = "2222222222222222222222222222222222222222"
)

// previewDesired is the reference workload, its port public, in pull request n's preview at head.
func previewDesired(n int, head string) providers.Desired {
	d := desired("web")
	d.Owner.Environment, d.Owner.Preview = schema.PreviewName(n), n
	d.Workload.Ports[0].Public, d.Workload.Ports[0].HostPort = true, 20080 // a host port of the preview's own
	d.SpecHash = providers.SpecHash(d.Workload)
	d.Preview = &schema.Preview{Number: n, Head: head, Base: "dev",
		Hosts: map[string]string{schema.HostKey("web", 8080): fmt.Sprintf("pr-%d-x1y2.localhost", n)}}
	return d
}

// listed is List of owner on aws-test once it shows something (ListServices leaves a new service out of the first
// listing that could show it), at most 5 tries.
func listed(ctx context.Context, t *testing.T, p *berthaws.Provider, owner providers.Owner) []providers.Observed {
	t.Helper()
	for range 5 {
		obs, err := p.List(ctx, owner, "aws-test")
		if err != nil {
			t.Fatalf("List %s: %v", owner.Environment, err)
		}
		if len(obs) > 0 {
			return obs
		}
	}
	return nil
}

func serviceTags(ctx context.Context, t *testing.T, emu *ecsemu.Server, service string) (*types.Service, map[string]string) {
	t.Helper()
	out, err := sdkClient(ctx, t, emu).DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(testCluster),
		Services: []string{service}, Include: []types.ServiceField{types.ServiceFieldTags}})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("DescribeServices %s: %v %+v", service, err, out)
	}
	tags := map[string]string{}
	for _, tg := range out.Services[0].Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return &out.Services[0], tags
}

func taskDefinitionTags(ctx context.Context, t *testing.T, emu *ecsemu.Server, arn string) map[string]string {
	t.Helper()
	out, err := sdkClient(ctx, t, emu).DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(arn), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, tg := range out.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return tags
}

// A preview's service and task definition carry the ownership tags plus the pull request's number and head; a new
// head with the same spec is a TagResource of the service (no new revision, no rollout), a changed spec a new
// revision tagged with the new head. The base environment's List never shows the preview, nor the preview's the
// base.
func TestPreviewTags(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "aws-test")
	ctx := testCtx(t)
	base := desired("web")
	if err := p.Apply(ctx, base); err != nil {
		t.Fatal(err)
	}
	d := previewDesired(42, headV1)
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	const name = "berth-berth-pr-42-web"
	svc, tags := serviceTags(ctx, t, emu, name)
	want := map[string]string{providers.LabelInstance: "berth", providers.LabelEnvironment: "pr-42",
		providers.LabelTarget: "aws-test", providers.LabelWorkload: "web", providers.LabelPreview: "42", providers.LabelHead: headV1}
	for k, v := range want {
		if tags[k] != v {
			t.Errorf("service tag %s = %q, want %q (tags %v)", k, tags[k], v, tags)
		}
	}
	tdTags := taskDefinitionTags(ctx, t, emu, aws.ToString(svc.TaskDefinition))
	for k, v := range want {
		if tdTags[k] != v {
			t.Errorf("task definition tag %s = %q, want %q", k, tdTags[k], v)
		}
	}
	if tdTags[providers.LabelSpecHash] != d.SpecHash {
		t.Errorf("task definition spec hash %q, want %q", tdTags[providers.LabelSpecHash], d.SpecHash)
	}

	// The same spec at a new head: one TagResource, nothing registered, nothing rolled.
	emu.ResetRequests()
	d2 := previewDesired(42, headV2)
	if err := p.Apply(ctx, d2); err != nil {
		t.Fatal(err)
	}
	if n, r, u := count(emu, "TagResource"), count(emu, "RegisterTaskDefinition"), count(emu, "UpdateService"); n != 1 || r != 0 || u != 0 {
		t.Errorf("a new head with the same spec: %d TagResource, %d RegisterTaskDefinition, %d UpdateService; want 1, 0, 0", n, r, u)
	}
	if _, tags := serviceTags(ctx, t, emu, name); tags[providers.LabelHead] != headV2 || tags[providers.LabelPreview] != "42" {
		t.Errorf("service tags after the new head: %v", tags)
	}
	emu.ResetRequests()
	if err := p.Apply(ctx, d2); err != nil {
		t.Fatal(err)
	}
	if n := count(emu, "TagResource"); n != 0 {
		t.Errorf("a repeated Apply tagged %d times, want 0", n)
	}

	// A changed spec at a third head: a new revision with that head.
	d3 := previewDesired(42, "3333333333333333333333333333333333333333")
	d3.Workload.Env["GREETING"] = "v3"
	d3.SpecHash = providers.SpecHash(d3.Workload)
	if err := p.Apply(ctx, d3); err != nil {
		t.Fatal(err)
	}
	svc, _ = serviceTags(ctx, t, emu, name)
	if got := taskDefinitionTags(ctx, t, emu, aws.ToString(svc.TaskDefinition))[providers.LabelHead]; got != d3.Preview.Head {
		t.Errorf("the new revision's head tag %q, want %q", got, d3.Preview.Head)
	}

	for _, c := range []struct {
		owner providers.Owner
		want  string
	}{{base.Owner, "dev"}, {d.Owner, "pr-42"}} {
		obs := listed(ctx, t, p, c.owner)
		if len(obs) != 1 || obs[0].Workload != "web" {
			t.Fatalf("List of %s: %+v, want web alone", c.want, obs)
		}
		if public := obs[0].Spec.Ports[0].Public; public != (c.want == "pr-42") {
			t.Errorf("List of %s reads back port public %t: the other environment's service", c.want, public)
		}
	}
	if err := p.Delete(ctx, d.Owner, "aws-test", "web"); err != nil {
		t.Fatal(err)
	}
	if obs := listed(ctx, t, p, base.Owner); len(obs) != 1 {
		t.Fatalf("deleting the preview's web touched the base's: %+v", obs)
	}
}

// A head that is not a commit id is not written as a tag (the rest of the preview is).
func TestPreviewHeadNotACommit(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "aws-test")
	ctx := testCtx(t)
	d := previewDesired(7, "refs/heads/../main; rm -rf /")
	if err := p.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	_, tags := serviceTags(ctx, t, emu, "berth-berth-pr-7-web")
	if _, ok := tags[providers.LabelHead]; ok || tags[providers.LabelPreview] != "7" {
		t.Errorf("tags %v: want the preview number and no head", tags)
	}
}

// Environments costs what the first part of a List costs (ListServices, DescribeServices with tags by 10) and
// nothing per service; it names each environment once, with its preview number (0 when the tag is absent or
// malformed) and head, and leaves out other instances and targets and services without our tags.
func TestEnvironments(t *testing.T) {
	hermetic(t)
	emu := emulator(t)
	p := newProvider(t, emu, "aws-test")
	ctx := testCtx(t)
	apply := func(d providers.Desired) {
		t.Helper()
		if err := p.Apply(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 12; i++ { // more than one DescribeServices batch
		d := desired(fmt.Sprintf("w%02d", i))
		d.Workload.Replicas = 1
		d.SpecHash = providers.SpecHash(d.Workload)
		apply(d)
	}
	for _, w := range []string{"web", "api"} {
		d := previewDesired(42, headV1)
		d.Workload.Name = w
		apply(d)
	}
	other := desired("web")
	other.Owner.Instance = "someone-else"
	apply(other)
	emu.CreateLookAlike(testCluster, "berth-berth-dev-lookalike", 1)
	elsewhere := newProvider(t, emu, "aws-other")
	d := desired("web")
	d.Target = "aws-other"
	if err := elsewhere.Apply(ctx, d); err != nil { // the same cluster, the other target's tags
		t.Fatal(err)
	}
	// A malformed preview tag, set by hand on one of the dev services.
	svc, _ := serviceTags(ctx, t, emu, "berth-berth-dev-w00")
	if _, err := sdkClient(ctx, t, emu).TagResource(ctx, &ecs.TagResourceInput{ResourceArn: svc.ServiceArn,
		Tags: []types.Tag{{Key: aws.String(providers.LabelPreview), Value: aws.String("042")}}}); err != nil {
		t.Fatal(err)
	}

	// ListServices leaves a new service out of the first listing that could show it (eventual consistency).
	if _, err := p.Environments(ctx, "berth", "aws-test"); err != nil {
		t.Fatal(err)
	}
	emu.ResetRequests()
	fresh := newProvider(t, emu, "aws-test")
	refs, err := fresh.Environments(ctx, "berth", "aws-test")
	if err != nil {
		t.Fatal(err)
	}
	want := []providers.EnvironmentRef{{Name: "dev"}, {Name: "pr-42", Preview: 42, Head: headV1}}
	if fmt.Sprint(refs) != fmt.Sprint(want) {
		t.Errorf("Environments = %+v, want %+v", refs, want)
	}
	var ops []string
	for _, r := range emu.Requests() {
		ops = append(ops, r.Op)
	}
	// 17 services in the cluster: 12 + 2 + the other instance's + the other target's + the look-alike.
	if got := strings.Join(ops, " "); got != "ListServices DescribeServices DescribeServices" {
		t.Errorf("Environments made the calls %v, want ListServices and 2 DescribeServices", ops)
	}
	for _, ref := range refs {
		if ref.Name == "pr-42" {
			continue
		}
		if ref.Preview != 0 {
			t.Errorf("%s: preview %d from a malformed tag", ref.Name, ref.Preview)
		}
	}
}

var _ providers.EnvironmentLister = (*berthaws.Provider)(nil)

// berth's Secrets Manager secret of a preview carries the preview's tags too, so that it is found and removed
// from the runtime alone; the preview's Delete removes it and leaves the base's.
func TestPreviewSecretTags(t *testing.T) {
	hermetic(t)
	store := secretsEmulator(t)
	emu := emulatorWithStore(t, store)
	p := newProviderWithStore(t, emu, store, "aws-prod")
	ctx := testCtx(t)
	w := secretWorkload()
	delete(w.SecretEnv, "API_KEY")
	base := secretDesired(providers.Owner{Instance: "berth", Environment: "prod"}, w, dbValue, "fp-db-1", "", "")
	pr := secretDesired(providers.Owner{Instance: "berth", Environment: "pr-9", Preview: 9}, w, dbValue, "fp-db-1", "", "")
	pr.Preview = &schema.Preview{Number: 9, Head: headV1, Base: "prod"}
	for _, d := range []providers.Desired{base, pr} {
		if err := p.Apply(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	sm, _ := storeClients(store)
	tags := func(name string) map[string]string {
		t.Helper()
		out, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
		if err != nil {
			t.Fatalf("DescribeSecret %s: %v", name, err)
		}
		m := map[string]string{}
		for _, tg := range out.Tags {
			m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		return m
	}
	if got := tags("berth/berth/pr-9/web/db"); got[providers.LabelPreview] != "9" || got[providers.LabelHead] != headV1 ||
		got[providers.LabelEnvironment] != "pr-9" {
		t.Errorf("the preview's secret is tagged %v", got)
	}
	if got := tags("berth/berth/prod/web/db"); got[providers.LabelPreview] != "" || got[providers.LabelHead] != "" {
		t.Errorf("the base's secret is tagged %v", got)
	}
	if err := p.Delete(ctx, pr.Owner, "aws-prod", "web"); err != nil {
		t.Fatal(err)
	}
	if store.SecretARN("berth/berth/pr-9/web/db") != "" || store.SecretARN("berth/berth/prod/web/db") == "" {
		t.Errorf("after the preview's Delete: preview secret %q, base secret %q",
			store.SecretARN("berth/berth/pr-9/web/db"), store.SecretARN("berth/berth/prod/web/db"))
	}
}
