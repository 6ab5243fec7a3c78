// Package awserr sorts the failures of AWS SDK calls that the service's own error codes do not: the HTTP status
// of an answer, a timeout or a dropped connection. The ECS provider and the Route 53 router classify their
// services' codes first and leave the rest to Transport.
package awserr

import (
	"context"
	"errors"
	"net"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/berth-dev/berth/providers"
)

// Transport classifies err by what carried it: 429, 408 and 5xx answers, timeouts and transport failures
// (connection reset, EOF) are transient; another 4xx answer, or an API error of a code the caller did not
// know, is final.
func Transport(err error) providers.Class {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch code := re.HTTPStatusCode(); {
		case code == 429 || code == 408 || code >= 500:
			return providers.Transient
		case code >= 400:
			return providers.Final
		}
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return providers.Transient // a timeout or a dropped connection: the call may be repeated
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) && re == nil {
		return providers.Transient // a transport failure (connection reset, EOF)
	}
	return providers.Final
}
