package aws_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/providers"
	berthaws "github.com/berth-dev/berth/providers/aws"
	"github.com/berth-dev/berth/schema"
)

// TestLive creates, reads and deletes one small workload on real ECS. It runs only with AWS credentials in the
// environment (AWS_ACCESS_KEY_ID or AWS_PROFILE) and BERTH_LIVE_AWS_REGION, BERTH_LIVE_AWS_CLUSTER,
// BERTH_LIVE_AWS_SUBNETS (comma separated); optional BERTH_LIVE_AWS_SECURITY_GROUPS, BERTH_LIVE_AWS_EXECUTION_ROLE
// and BERTH_LIVE_AWS_IMAGE (default public.ecr.aws/docker/library/busybox:stable).
func TestLive(t *testing.T) {
	region, cluster, subnets := os.Getenv("BERTH_LIVE_AWS_REGION"), os.Getenv("BERTH_LIVE_AWS_CLUSTER"), os.Getenv("BERTH_LIVE_AWS_SUBNETS")
	if region == "" || cluster == "" || subnets == "" || (os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "") {
		t.Skip("set AWS credentials and BERTH_LIVE_AWS_REGION, BERTH_LIVE_AWS_CLUSTER, BERTH_LIVE_AWS_SUBNETS to run")
	}
	settings := map[string]any{"region": region, "cluster": cluster, "subnets": splitList(subnets), "assignPublicIp": true}
	if v := os.Getenv("BERTH_LIVE_AWS_SECURITY_GROUPS"); v != "" {
		settings["securityGroups"] = splitList(v)
	}
	if v := os.Getenv("BERTH_LIVE_AWS_EXECUTION_ROLE"); v != "" {
		settings["executionRoleArn"] = v
	}
	image := os.Getenv("BERTH_LIVE_AWS_IMAGE")
	if image == "" {
		image = "public.ecr.aws/docker/library/busybox:stable"
	}
	pr, err := providers.New(schema.Target{Name: "aws-live", Type: "aws", Settings: settings}, providers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := pr.(*berthaws.Provider)
	p.PollInterval = 10 * time.Second
	var b [3]byte
	rand.Read(b[:])
	owner := providers.Owner{Instance: "live" + hex.EncodeToString(b[:]), Environment: "test"}
	w := schema.Workload{Name: "sleeper", Image: image, Command: []string{"sleep"}, Args: []string{"3600"}, Replicas: 1,
		Resources: schema.Resources{CPUMillis: 250, MemoryBytes: 512 << 20}}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if err := p.Delete(ctx, owner, "aws-live", w.Name); err != nil {
			t.Errorf("Delete: %v", err)
		}
	})
	d := providers.Desired{Owner: owner, Target: "aws-live", Workload: w, SpecHash: providers.SpecHash(w)}
	if err := p.Apply(ctx, d); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	obs, err := p.List(ctx, owner, "aws-live")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(obs) != 1 || obs[0].SpecHash != d.SpecHash || len(obs[0].Replicas) != 1 || obs[0].Spec.Image != image {
		t.Fatalf("List = %+v", obs)
	}
}

func splitList(s string) []any {
	var out []any
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}
