package keyvaultemu_test

import (
	"context"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/berth-dev/berth/providers/azure/keyvaultemu"
)

type staticToken string

func (t staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(t), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// The real azsecrets client on a vault's real address: the emulator's Client is the transport, so the challenge
// is answered and verified as in production, with no network.
func Example() {
	emu := keyvaultemu.New(keyvaultemu.Options{})
	defer emu.Close()
	version := emu.SetSecret("myvault", "db-password", "s3cr3t")

	c, err := azsecrets.NewClient(emu.VaultURL("myvault"), staticToken("test-token"),
		&azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: emu.Client()}})
	if err != nil {
		panic(err)
	}
	got, err := c.GetSecret(context.Background(), "db-password", "", nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(got.ID.Name(), got.ID.Version() == version, emu.Count("GetSecret"), len(emu.Requests()))
	// Output: db-password true 1 2
}
