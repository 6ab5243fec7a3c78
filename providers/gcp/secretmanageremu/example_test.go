package secretmanageremu_test

import (
	"context"
	"fmt"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/berth-dev/berth/providers/gcp/secretmanageremu"
)

// The real Go client on the emulator, over REST and over gRPC: the same state answers both.
func Example() {
	emu := secretmanageremu.New(secretmanageremu.Options{Projects: map[string]int64{"my-project": 123456789}})
	defer emu.Close()
	if _, err := emu.AddVersion("projects/my-project/secrets/db", []byte("s3cr3t")); err != nil {
		panic(err)
	}
	ctx := context.Background()
	rest, err := secretmanager.NewRESTClient(ctx, option.WithEndpoint(emu.URL()), option.WithoutAuthentication())
	if err != nil {
		panic(err)
	}
	defer rest.Close()
	rpc, err := secretmanager.NewClient(ctx, option.WithEndpoint(emu.GRPCAddr()), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		panic(err)
	}
	defer rpc.Close()
	for _, c := range []*secretmanager.Client{rest, rpc} {
		got, err := c.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: "projects/my-project/secrets/db/versions/latest"})
		if err != nil {
			panic(err)
		}
		fmt.Println(got.Name, got.Payload.GetDataCrc32C() == secretmanageremu.CRC32C(got.Payload.Data))
	}
	// Output:
	// projects/123456789/secrets/db/versions/1 true
	// projects/123456789/secrets/db/versions/1 true
}
