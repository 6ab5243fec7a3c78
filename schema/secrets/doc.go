// Package secrets decrypts the SOPS files of a repository in memory with the age identities the controller holds,
// and computes the keyed fingerprints that let a rotated secret be seen as a change without showing its value.
//
// A secret declared as `secrets: db: {sops: "secrets/db.enc.yaml", key: "db.password"}` (see schema.Secret) is read
// from the snapshot's tree, its data key is opened with one of the controller's age identities (from the serve
// configuration's secrets.ageIdentities, never from the repository), every value is decrypted with AES-256-GCM and
// the file's MAC is checked before anything is returned. The clear value is never written to disk; it is
// registered with package redact before it is returned, so no log line, error, status or plan can show it.
//
// Formats, as the sops tool (github.com/getsops/sops/v3, checked against v3.13.3) writes them: YAML (.yaml, .yml),
// JSON (.json) and binary (any other extension: a JSON envelope whose "data" holds the whole file). Encryption
// rules unencrypted_suffix, encrypted_suffix, unencrypted_regex, encrypted_regex and mac_only_encrypted are
// honoured; one key group of age recipients is supported. Not supported, each with a clear error: the dotenv and
// INI formats, the comment regexes, several key groups (Shamir), and files encrypted only for PGP or a cloud KMS.
// The format is implemented here rather than by importing sops/v3, whose root package links every KMS client.
//
// Non-goals: encrypting (the sops CLI does that; package sopstest writes files for tests), resolving references
// to cloud or runtime secret stores (the providers do), and caching: each Decrypt reads and opens the file again,
// which costs one X25519 operation and one AES-GCM pass over the file.
//
// Caller's duties: pass the tree Load read (the snapshot's directory at the source's path), preferably as an
// os.Root's FS so that nothing outside it can be read; keep returned values in memory only, for the provider call
// that needs them; add where the workload references the secret when reporting an *Error.
//
//	d, err := secrets.LoadIdentities(cfg.Secrets.AgeIdentities) // once, at start; errors never quote a key
//	v, err := d.Decrypt(ctx, root.FS(), env.Secrets["db"])      // *Error naming the secret and its declaration
//	label := secrets.Fingerprint(d.FingerprintKey(), v)         // in a label: changes when the value does
package secrets
