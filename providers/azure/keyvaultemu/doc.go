// Package keyvaultemu is a wire-level emulator of the Azure Key Vault secrets data plane, the part berth resolves
// secretValue references from. It is an HTTPS server with a certificate of its own: the real azsecrets client talks
// to it unchanged, with its challenge-based authentication, given the server's Client as its transport and a token
// credential of the test's.
//
// Two ways to address it:
//   - VaultURL(name) (https://<name>.vault.azure.net) with Client() as azcore.ClientOptions.Transport: the client
//     dials the emulator for every host (never the network), trusts its certificate, and verifies the challenge's
//     resource against the vault's domain as in production. The host names the vault, so one server holds many.
//   - URL() (https://127.0.0.1:port), the vault Options.Vault, with azsecrets.ClientOptions
//     .DisableChallengeResourceVerification set (vault.azure.net is not a parent domain of an IP address) and a
//     transport trusting the certificate (Client() does).
//
// Operations implemented (api-version APIVersion, 2026-04-01, the one azsecrets v1.5 sends; 7.0-7.6 and
// 2025-07-01 are accepted too):
//
//	GET    /secrets/{name}/{version}   GetSecret (an empty version, /secrets/{name}/ or /secrets/{name}: the latest)
//	PUT    /secrets/{name}             SetSecret: always a new version, which becomes the latest
//	PATCH  /secrets/{name}/{version}   UpdateSecret (UpdateSecretProperties: enabled, nbf, exp, contentType, tags)
//	GET    /secrets/{name}/versions    GetSecretVersions (one page, in the order of the version ids, as Key Vault lists them)
//	DELETE /secrets/{name}             DeleteSecret (soft delete, 90 days)
//	DELETE /deletedsecrets/{name}      PurgeDeletedSecret (204)
//	POST   /deletedsecrets/{name}/recover  RecoverDeletedSecret
//
// Behaviour that matters to a provider:
//   - The challenge: a request without a bearer token (the client's first, sent without its body) answers 401
//     Unauthorized "AKV10000: Request is missing a Bearer or PoP token." with WWW-Authenticate: Bearer
//     authorization="https://login.microsoftonline.com/<Options.TenantID>", resource="https://vault.azure.net";
//     the client then asks its credential for scope https://vault.azure.net/.default in that tenant and sends the
//     request again. With Options.Token set, another token is 401 too (with the challenge, so the client tries once
//     more and then returns the 401).
//   - Secret ids as Key Vault gives them: https://<vault host>/secrets/<name>/<version>, the version 32 lower-case
//     hex digits; names are case-insensitive and keep the case of their first SetSecret. Attributes: enabled,
//     created, updated (Unix seconds), nbf and exp when set, recoveryLevel Recoverable+Purgeable, recoverableDays 90.
//     Rotation is visible as a new version id on the latest GetSecret.
//   - Errors in Key Vault's shape ({"error":{"code","message","innererror":{"code"}}}): 404 SecretNotFound ("A
//     secret with (name/id) db was not found in this key vault. ..."), 403 Forbidden with innererror
//     ForbiddenByRbac (Deny; the RBAC text with Caller, Action, Resource, Assignment, Vault lines) or SecretDisabled
//     ("Operation get is not allowed on a disabled secret."), 409 Conflict for a name whose secret is soft-deleted,
//     400 BadParameter (an invalid name: 1-127 letters, digits and dashes; a value over 25 KiB; more than 15 tags;
//     a missing or unknown api-version), 401 Unauthorized.
//   - Faults (Fail, FailOp) hit authorized requests only, never the challenge: Throttle (429 Throttled, with
//     Retry-After from Options.RetryAfter, default 0 so clients use their own delay), ServerError (500),
//     Unavailable (503), Timeout (no answer until the client's context ends, or Close), Reset (the connection is
//     closed). azcore retries 429 and 5xx.
//   - Out-of-band hooks: SetSecret (a new version), SetEnabled, Deny; Requests (with Authorized false for the
//     challenge's requests) and Count (authorized requests) report what was received. Request bodies hold the
//     values a client sent with SetSecret.
//
// Where the official definition is silent: the REST reference lists status codes but no error codes or texts. The
// codes SecretNotFound, Forbidden (ForbiddenByRbac, SecretDisabled), Unauthorized, BadParameter, Conflict and
// Throttled and the quoted texts are the service's as seen in public reports and the SDK's troubleshooting guide;
// the texts of the BadParameter answers for values, tags, bodies and api-versions, of a refused token, and of 5xx
// are the emulator's. The service enforces nbf and exp for keys' crypto operations; for secrets the documentation
// does not say that GET is refused outside them, and the emulator does not refuse it.
//
// Simplified: no managed (certificate-backed) secrets, backup and restore, list of secrets or of deleted secrets,
// paging, or purge protection; deleted secrets are never purged by time; access is all-or-nothing per token (plus
// Deny), with no RBAC or access policy model.
package keyvaultemu
