package swarm

import (
	"github.com/docker/docker/api/types/swarm"

	"github.com/berth-dev/berth/providers"
)

// Internals the external tests check directly.
var (
	ServiceSpecFor     = serviceSpec
	Progress           = progress
	Observe            = observe
	ReadBack           = readBack
	ImageOf            = imageOf
	PullRefused        = pullRefused
	AnonymousAuth      = anonymousAuth
	LastTaskError      = lastTaskError
	Classify           = classify
	IsSequenceConflict = isSequenceConflict
)

var (
	SecretObjectSpec = secretObjectSpec
	SetSecretIDs     = setSecretIDs
	FileOwner        = fileOwner
)

var (
	PreviewLabels = providers.PreviewLabels
	PreviewOf     = providers.PreviewOf
	Environments  = environments
	Endpoints     = endpoints
	NodeAddress   = nodeAddress
)

// ProbeResult is the health berth probed of one task.
type ProbeResult = probeResult

var (
	NewChecker = newChecker
	CheckTask  = (*checker).check
)

var (
	PublishSpecFor = publishSpec
	DetectPublish  = detectPublish
	HostEndpoints  = hostEndpoints
)

// CanarySpecFor is the canary of spec, the service spec of d.
func CanarySpecFor(spec swarm.ServiceSpec, d providers.Desired) swarm.ServiceSpec {
	return canarySpec(spec, keyOf(d), CanaryName(d.Owner, d.Workload.Name))
}

var ProbeEach = probeEach

// EndpointsOf are the endpoints p's List reports for the service svc with its tasks ts.
func EndpointsOf(p *Provider, svc swarm.Service, ts []swarm.Task) []providers.Endpoint {
	l := svc.Spec.Labels
	k := wkey{l[providers.LabelInstance], l[providers.LabelEnvironment], l[providers.LabelTarget], l[providers.LabelWorkload]}
	return p.endpointsOf(svc, ts, k)
}

// Engine is how p's Endpoint.Watch names the manager.
func Engine(p *Provider) string { return p.engine }
