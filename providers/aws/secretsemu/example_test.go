package secretsemu_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/berth-dev/berth/providers/aws/secretsemu"
)

// The real SDK clients on the emulator: one endpoint for both services, static test credentials.
func Example() {
	emu := secretsemu.New(secretsemu.Options{})
	defer emu.Close()
	arn, _ := emu.SetSecretString("prod/db", "s3cr3t")
	emu.SetParameter("/prod/api-key", secretsemu.TypeSecureString, "k3y")

	cfg := aws.Config{Region: secretsemu.DefaultRegion,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "test-secret-key", "")}
	sm := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(emu.URL()) })
	ps := ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.BaseEndpoint = aws.String(emu.URL()) })

	ctx := context.Background()
	sec, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		panic(err)
	}
	par, err := ps.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/prod/api-key"), WithDecryption: aws.Bool(true)})
	if err != nil {
		panic(err)
	}
	fmt.Println(*sec.Name, sec.VersionStages, *par.Parameter.Name, par.Parameter.Version, emu.Count(""))
	// Output: prod/db [AWSCURRENT] /prod/api-key 1 2
}
