package route53_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/berth-dev/berth/providers/endpoint"
	"github.com/berth-dev/berth/providers/endpoint/dnstest"
	"github.com/berth-dev/berth/providers/endpoint/route53"
	"github.com/berth-dev/berth/providers/endpoint/route53/route53emu"
)

// A name moves from one copy to another by weights; clients follow once Set returns.
func Example() {
	emu := route53emu.New("example.com", route53emu.Options{PendingPolls: 2})
	api := httptest.NewServer(emu)
	defer api.Close()
	dnsSrv, _ := emu.ServeDNS("127.0.0.1:0")
	defer dnsSrv.Close()

	client := r53.New(r53.Options{Region: "us-east-1", BaseEndpoint: aws.String(api.URL), Retryer: aws.NopRetryer{},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "example"}, nil
		})})
	r, err := route53.NewWithClient(client, dnsTarget(map[string]any{"zoneId": emu.ZoneID()}), endpoint.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	r.PollInterval = time.Millisecond

	ctx := context.Background()
	owner := endpoint.Owner{Instance: "berth", Environment: "prod", Workload: "web"}
	for _, w := range []int{100, 0} {
		err := r.Set(ctx, owner, "web.example.com", time.Minute, []endpoint.Member{
			{Target: "aws", Addresses: []string{"lb-1.elb.us-east-1.amazonaws.com"}, Weight: 100 - w},
			{Target: "gcp", Addresses: []string{"203.0.113.7"}, Weight: w},
		})
		if err != nil {
			fmt.Println(err)
			return
		}
		got, _ := dnstest.Lookup(ctx, dnsSrv.Addr(), "web.example.com")
		fmt.Println(got)
	}
	// Output:
	// [203.0.113.7]
	// [lb-1.elb.us-east-1.amazonaws.com]
}
