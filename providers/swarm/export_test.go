package swarm

// Internals the external tests check directly.
var (
	ServiceSpecFor     = serviceSpec
	Progress           = progress
	Observe            = observe
	ReadBack           = readBack
	Classify           = classify
	IsSequenceConflict = isSequenceConflict
)

var (
	SecretObjectSpec = secretObjectSpec
	SetSecretIDs     = setSecretIDs
	FileOwner        = fileOwner
)

var (
	PreviewLabels = previewLabels
	PreviewOf     = previewOf
	Environments  = environments
	Endpoints     = endpoints
	NodeAddress   = nodeAddress
)
