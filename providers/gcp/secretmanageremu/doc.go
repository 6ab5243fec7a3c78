// Package secretmanageremu is a wire-level emulator of the subset of Google Cloud Secret Manager (v1) that berth
// resolves secrets from. One state is served over both transports of the Go client
// (cloud.google.com/go/secretmanager/apiv1): REST (URL, for NewRESTClient with option.WithEndpoint and
// option.WithoutAuthentication; JSON as the client's protojson encodes it, $alt=json;enum-encoding=int honoured,
// Google's JSON error format) and gRPC (GRPCAddr, for NewClient with option.WithEndpoint,
// option.WithoutAuthentication and an insecure transport credential). Neither needs the network.
//
// Methods implemented (REST paths under /v1/):
//
//	AccessSecretVersion   GET  projects/{p}/secrets/{s}/versions/{v}:access   (v: a number or latest)
//	GetSecretVersion      GET  projects/{p}/secrets/{s}/versions/{v}
//	AddSecretVersion      POST projects/{p}/secrets/{s}:addVersion
//	CreateSecret          POST projects/{p}/secrets?secretId={s}
//	GetSecret             GET  projects/{p}/secrets/{s}
//	DeleteSecret          DELETE projects/{p}/secrets/{s}  (?etag=)
//	Disable/Enable/DestroySecretVersion  POST projects/{p}/secrets/{s}/versions/{v}:disable|:enable|:destroy
//
// Behaviour that matters to a provider:
//   - Names come back with the project number, whether the request named the project by id or number (as the
//     service answers): ProjectNumber gives it. Versions are numbered from 1 per secret; latest is the most
//     recently created version whatever its state. Access answers the resolved version's name (.../versions/3 for
//     latest) and payload.data with payload.data_crc32c (CRC32C, Castagnoli); a rotation is a new version number.
//   - Version states ENABLED, DISABLED, DESTROYED (the payload is erased, destroy_time set; a destroyed version
//     cannot be enabled again). Access of a DISABLED or DESTROYED version is FAILED_PRECONDITION "Secret Version
//     [projects/N/secrets/s/versions/V] is in DISABLED state."; GetSecretVersion still answers its state.
//   - Errors, as gRPC codes (over REST, {"error":{"code":<HTTP status>,"message","status":"<CODE>"}}): NOT_FOUND
//     ("Secret [projects/N/secrets/s] not found or has no versions." for latest or a missing secret, "Secret
//     Version [.../versions/V] not found.", "Secret [...] not found."), PERMISSION_DENIED (Deny: "Permission
//     'secretmanager.versions.access' denied for resource '<name as requested>' (or it may not exist)."; a project
//     outside Options.Projects), FAILED_PRECONDITION (states, stale etags), ALREADY_EXISTS, INVALID_ARGUMENT (a
//     secret id outside [a-zA-Z0-9_-]{1,255}, no replication, a payload over 64 KiB, a data_crc32c that does not
//     match), RESOURCE_EXHAUSTED (429), UNAUTHENTICATED (Options.Token).
//   - Over REST the client derives the gRPC code from the HTTP status (gax apierror): FAILED_PRECONDITION and
//     INVALID_ARGUMENT are both 400 and surface as codes.InvalidArgument; only the body's "status" field (in
//     googleapi.Error.Body) tells them apart. Over gRPC the code is exact. A provider that needs to tell a disabled
//     version from a bad request should use the gRPC client, or read the status field.
//   - The client's own retry policy: AccessSecretVersion retries UNAVAILABLE and RESOURCE_EXHAUSTED with a 2 s
//     initial backoff (tests pass gax.WithRetry with a short one); the other methods do not retry.
//   - Faults (Fail, FailOp) on either transport: Throttle (RESOURCE_EXHAUSTED, the per-minute access quota text),
//     ServerError (INTERNAL), Unavailable (UNAVAILABLE), Timeout (no answer until the client's context ends, or
//     Close), Reset (REST: the connection is closed; gRPC: UNAVAILABLE).
//   - Out-of-band hooks: AddVersion (creates the secret with automatic replication if needed), SetState, Deny;
//     Requests (method, resource name, transport, request message — an AddSecretVersion's payload is in it) and
//     Count report what was received.
//
// Where the official definition is silent: the API reference documents the methods, fields and aliases but not
// the error texts. The NOT_FOUND, FAILED_PRECONDITION, PERMISSION_DENIED, ALREADY_EXISTS, UNAUTHENTICATED and
// RESOURCE_EXHAUSTED texts follow the service's wording as publicly reported (not checked against the live API
// here); the INVALID_ARGUMENT texts (secret id, missing
// replication, payload size, checksum mismatch, missing payload, resource names) and the etag texts are the
// emulator's. Whether the service checks a secret's etag on DeleteSecret with FAILED_PRECONDITION or ABORTED is
// not documented; the emulator answers FAILED_PRECONDITION.
//
// Simplified: no regional secrets (projects/{p}/locations/{l}/...), version aliases other than latest, labels or
// annotations checks, expiration, rotation topics, CMEK, UpdateSecret, List methods or IAM methods; replication is
// required but not interpreted; etags are checked only when given.
package secretmanageremu
