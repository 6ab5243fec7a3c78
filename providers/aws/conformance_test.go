package aws_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/berth-dev/berth/providers"
	"github.com/berth-dev/berth/providers/aws/ecsemu"
	"github.com/berth-dev/berth/providers/aws/secretsemu"
	"github.com/berth-dev/berth/providers/conformance"
	"github.com/berth-dev/berth/schema"
)

// TestConformance runs the shared provider suite with the real ECS SDK client against the emulator: drift through
// StopTask (over the API, as an operator would) and KillTask (a task dying), field drift as the console makes it
// (a new revision of the task definition with one field changed, the service pointed at it; a new desired count;
// the current revision deregistered), an unmanaged tag of someone else's on the service, look-alikes as untagged
// services, faults as throttling and 5xx answers. Probe reads what the emulated container sees (its environment,
// secrets resolved from the Secrets Manager emulator as the ECS agent resolves them at task start): the
// emulator runs no container, so the endpoints (each task's private address, from its network interface) are
// checked for being there, not fetched. The secret case uses a SOPS value,
// which berth keeps in its own Secrets Manager secret (a reference the runtime resolves is
// TestConformanceSecretReference: berth sees a reference change only when its version does).
func TestConformance(t *testing.T) { runConformance(t, nil) }

// TestConformanceSecretReference runs the suite with the secret case's GREETING from a Secrets Manager secret
// that the test makes in the emulator and that ECS resolves: each value is a new version put by the test (as an
// operator or a rotation function would), declared by its version-pinned ARN (ARN:::version-id), so that the
// rotation is a new reference berth can see. The value never transits berth.
func TestConformanceSecretReference(t *testing.T) {
	runConformance(t, func(store *secretsemu.Server) func(ctx context.Context, t *testing.T, name, value string) (schema.Secret, []byte) {
		sm, _ := storeClients(store)
		return func(ctx context.Context, t *testing.T, name, value string) (schema.Secret, []byte) {
			id := "cf/" + name
			if store.SecretARN(id) == "" {
				if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(id)}); err != nil {
					t.Fatal(err)
				}
			}
			out, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(value)})
			if err != nil {
				t.Fatal(err)
			}
			return schema.Secret{AWS: &schema.AWSSecret{ARN: aws.ToString(out.ARN) + ":::" + aws.ToString(out.VersionId),
				Service: "secretsmanager"}}, nil
		}
	})
}

func runConformance(t *testing.T, source func(store *secretsemu.Server) func(ctx context.Context, t *testing.T, name, value string) (schema.Secret, []byte)) {
	hermetic(t)
	store := secretsEmulator(t)
	emu := emulatorWithStore(t, store)
	secrets := &conformance.SecretsCase{}
	if source != nil {
		secrets.Source = source(store)
	}
	var b [4]byte
	rand.Read(b[:])
	owner := providers.Owner{Instance: "cf" + hex.EncodeToString(b[:]), Environment: "dev"}
	const tgt = "aws-test"
	name := func(workload string) string {
		return fmt.Sprintf("berth-%s-%s-%s", owner.Instance, owner.Environment, workload)
	}
	secrets.Leaks = func(ctx context.Context, t *testing.T, workload, value string) string {
		return leaks(ctx, t, emu, store, owner, workload, value)
	}
	emu.SetTargetHealth(targetHealth)
	faults := 0
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) providers.Provider { return newProviderWithStore(t, emu, store, tgt) },
		Probe: func(ctx context.Context, w schema.Workload) (string, error) {
			// What the load balancer routes to: the tasks its target groups find healthy.
			envs := emu.ServingEnvironment(testCluster, name(w.Name))
			if len(envs) == 0 {
				return "", fmt.Errorf("no healthy task of %s behind its load balancer", name(w.Name))
			}
			var greetings []string
			for _, env := range envs {
				greetings = append(greetings, env["GREETING"])
			}
			return strings.Join(greetings, " | "), nil
		},
		Secrets: secrets,
		Target:  tgt,
		Owner:   owner,
		Image:   "registry.example/berth-app:1",
		ImageV2: "registry.example/berth-app:2",
		// The quickstart's web workload: its port public through a network load balancer of its own and its HTTP
		// check run by the target group (so every name, a preview's copy too, gets the same container port).
		Workload: func(n string) schema.Workload {
			w := quickstartWorkload(n)
			w.Image = "registry.example/berth-app:1"
			w.Replicas = 1
			return w
		},
		// A version the load balancer finds unhealthy: the emulator is told that this image fails /healthz.
		Unhealthy: func(w schema.Workload) schema.Workload {
			w.Image = unhealthyImage
			return w
		},
		HoldFor: 3 * time.Second,
		Drift: func(ctx context.Context, t *testing.T, workload string, i int, kind string) {
			live := emu.LiveTasks(testCluster, name(workload))
			if len(live) == 0 {
				t.Fatalf("drift: no live task of %s", workload)
			}
			switch kind {
			case conformance.DriftRemove:
				if _, err := emu.KillTask(testCluster, name(workload), i%len(live)); err != nil {
					t.Fatal(err)
				}
			case conformance.DriftStop:
				if err := stopTask(ctx, t, emu, live[i%len(live)]); err != nil {
					t.Fatalf("drift: StopTask: %v", err)
				}
			default:
				t.Fatalf("drift: unknown kind %q", kind)
			}
		},
		LookAlike: func(ctx context.Context, t *testing.T, workload string) func() bool {
			n := name(workload) + "-lookalike"
			emu.CreateLookAlike(testCluster, n, 1)
			return func() bool {
				active, _ := emu.ServiceRunning(testCluster, n)
				return active
			}
		},
		Tamper: map[string]func(context.Context, *testing.T, string){
			conformance.TamperImage: editContainer(emu, name, func(c *types.ContainerDefinition) {
				c.Image = aws.String("registry.example/berth-app:by-hand")
			}),
			conformance.TamperCommand: editContainer(emu, name, func(c *types.ContainerDefinition) {
				c.EntryPoint = []string{"/bin/sh"}
			}),
			conformance.TamperArgs: editContainer(emu, name, func(c *types.ContainerDefinition) {
				c.Command = []string{"debug"}
			}),
			conformance.TamperEnv: editContainer(emu, name, func(c *types.ContainerDefinition) {
				for i := range c.Environment {
					if aws.ToString(c.Environment[i].Name) == "GREETING" {
						c.Environment[i].Value = aws.String("by hand")
					}
				}
			}),
			conformance.TamperPorts: editContainer(emu, name, func(c *types.ContainerDefinition) {
				c.PortMappings[0].ContainerPort = aws.Int32(9090)
				c.PortMappings[0].HostPort = aws.Int32(9090)
			}),
			conformance.TamperHealth: func(ctx context.Context, t *testing.T, workload string) {
				modifyTargetGroups(ctx, t, emu, owner, tgt, workload, func(in *elb.ModifyTargetGroupInput) {
					in.HealthCheckIntervalSeconds = aws.Int32(30)
				})
			},
			conformance.TamperResources: func(ctx context.Context, t *testing.T, workload string) {
				reviseTaskDefinition(ctx, t, emu, name(workload), func(in *ecs.RegisterTaskDefinitionInput) {
					in.Memory = aws.String("1024")
				})
			},
			conformance.TamperReplicas:                   scaleByHand(emu, name),
			conformance.TamperObject + "task definition": deregisterCurrent(emu, name),
			conformance.TamperObject + "target group": func(ctx context.Context, t *testing.T, workload string) {
				for _, n := range emu.TargetGroupNames() {
					if strings.HasPrefix(n, "b-"+workload[:min(len(workload), 10)]) && emu.DeleteTargetGroupByHand(n) {
						return
					}
				}
				t.Fatalf("no target group of %s among %v", workload, emu.TargetGroupNames())
			},
			conformance.TamperObject + "listener": func(ctx context.Context, t *testing.T, workload string) {
				for _, n := range emu.LoadBalancerNames() {
					if strings.HasPrefix(n, "b-"+workload[:min(len(workload), 10)]) && emu.DeleteListenerByHand(n, 8080) {
						return
					}
				}
				t.Fatalf("no listener of %s on port 8080 among %v", workload, emu.LoadBalancerNames())
			},
		},
		Unmanaged: foreignTag(emu, name),
		Faults: func(n int) {
			kind := ecsemu.Throttle
			if faults%2 == 1 {
				kind = ecsemu.ServerError
			}
			faults++
			emu.Fail(n, kind)
		},
		Timeout: 60 * time.Second,
	})
}
