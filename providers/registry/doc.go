// Package registry reads an image's configuration (its entrypoint, default command, environment) from the
// registry that holds it, over the Registry HTTP API v2 of the OCI distribution specification, with nothing but
// net/http: providers whose runtime replaces the image's entrypoint when given arguments (Azure Container
// Instances has one command list) read the entrypoint here and pass entrypoint + args.
//
// Client.Digest resolves a tag to the digest of what it names (HEAD of the manifest), for a plan to pin.
//
// What it speaks: GET /v2/<name>/manifests/<reference> with the OCI and Docker v2 media types (an image index or
// manifest list is resolved to the manifest of the Client's platform, linux/amd64 by default), then GET
// /v2/<name>/blobs/<digest> for the config blob. Every manifest fetched by digest and the config blob are checked
// against their sha256 digests. Authentication follows the registry's challenge: anonymous first; on 401 with
// "WWW-Authenticate: Bearer realm=...,service=...,scope=..." a token is fetched from the realm (with the
// Client's credentials for the host as basic authentication, when it has any, and only over HTTPS, on loopback or
// to the registry's own host) and the request repeated once; on a Basic challenge the credentials are sent to the
// registry itself. Tokens are kept per host and scope until they expire. docker.io references go to
// registry-1.docker.io, with library/ before a one-part name. Plain HTTP is used for loopback hosts only
// (localhost, 127.0.0.0/8, ::1) unless Client.PlainHTTP says otherwise.
//
// Bounds: every answer is read through a size limit (manifests 4 MiB, config blobs 8 MiB, tokens 1 MiB), and every
// request is bound by the caller's context and Client.Timeout (DefaultTimeout).
//
// Errors keep their kind: ErrNotFound (the repository, tag, digest or blob is unknown, or the index has no manifest
// of the platform), ErrUnauthorized (credentials missing or refused), ErrInvalid (a reference that does not parse, a
// manifest of a kind it does not read, a digest that does not match); anything else (5xx, 429, the network) is
// transient. An *Error carries the registry's own code and message; it never carries credentials or tokens.
//
// Non-goals: pushing, pulling layers, schema 1 manifests, the credential helpers of docker's config.json (the
// caller gives credentials through Client.Credentials).
package registry
