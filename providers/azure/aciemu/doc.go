// Package aciemu is a wire-level emulator of the Azure Resource Manager API subset that berth's Azure Container
// Instances provider uses. It is an httptest TLS server: the real armcontainerinstance client talks to it unchanged,
// with only the endpoint, the transport (to trust the test certificate) and the credential differing.
//
// Operations implemented (api-version 2023-05-01, also accepted: 2022-10-01-preview, 2023-02-01-preview,
// 2024-05-01-preview):
//
//	PUT    /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/containerGroups/{name}  ContainerGroups_CreateOrUpdate
//	GET    .../containerGroups/{name}                                                                      ContainerGroups_Get
//	DELETE .../containerGroups/{name}                                                                      ContainerGroups_Delete
//	GET    /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/containerGroups     ContainerGroups_ListByResourceGroup
//	GET    /subscriptions/{s}/providers/Microsoft.ContainerInstance/locations/{l}/operations/{id}          AsyncOperation_Get (Azure-AsyncOperation)
//	GET    /subscriptions/{s}/providers/Microsoft.ContainerInstance/locations/{l}/operationResults/{id}    OperationResult_Get (Location)
//
// Behaviour: every request needs a bearer token (401 AuthenticationFailed otherwise) and an api-version (400
// MissingApiVersionParameter / InvalidApiVersionParameter). A PUT that creates answers 201, an update 200, both with
// Azure-AsyncOperation, Location and Retry-After headers; the operation stays InProgress for
// Options.OperationTicks server steps (every request is one step: tests control time by making requests, never by
// sleeping), then Succeeded (or Failed / Canceled by fault). The group then reports instanceView.state Pending and
// its containers Waiting for Options.StartTicks more steps before Running. A PUT whose body equals the stored one is
// idempotent: 200 with the current state and the in-flight operation's headers, no new operation. A PUT with a
// different body while an operation is in flight is 409 Conflict. DELETE answers 202 with the operation headers,
// 204 when the group does not exist. A newly created group is missing from the next Options.ListLag list reads
// (eventual consistency). Validation errors use ARM's {"error":{"code","message"}} body: InvalidResourceName,
// LocationRequired, InvalidRequestContent, InvalidTagNameCharacters, InvalidTagValueLength,
// ResourceRequestsNotSupported (CPU 0.01..4 cores in steps of 0.01, memory 0.1..16 GB in steps of 0.1),
// InaccessibleImage (an image outside Options.Images when that list is set). secureValue is never returned.
//
// Faults (Fail): throttle (429 TooManyRequests with Retry-After), server (500 InternalServerError; the constant ServerError), unavailable
// (503 ServiceUnavailable), timeout (504 GatewayTimeout), conflict (409 Conflict) hit the next requests; slow
// (the operation stays InProgress Options.SlowTicks longer), failed and canceled hit the next operations. Drift:
// DeleteGroup, StopGroup (instance state Stopped, containers Terminated). Look-alikes: PutGroup inserts a running
// group directly. Requests logs every (operation, method, path, body) for golden files.
//
// Simplified: one fake public IP per group, no real containers (probes are not run: Running means ready), no
// pagination (no nextLink), no per-region token buckets, no restart/start/stop/update (PATCH) operations, no
// volumes, subnets or registry credentials, names compared case-insensitively as ARM does.
package aciemu
