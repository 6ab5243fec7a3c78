// Package redact is berth's one redaction choke point: every value that must never be shown (a decrypted secret,
// a Git password or token, an SSH key passphrase, a webhook secret, a cloud credential) is registered once, and
// everything berth prints, logs, stores, serves or posts passes through String (or the slog Handler, Writer, Error,
// Body) on its way out. A registered value is masked in every encoding a server or a library may echo it in:
// plain, base64 (standard and URL alphabets, padded or not), base64 of "user:password" for HTTP basic credentials,
// URL-encoded (query, path and userinfo escaping), JSON-escaped (with and without HTML escaping) and hex. A private
// key registered with RegisterPEM is masked whole, line by line and as its body joined on one line.
//
// Non-goals: values shorter than MinLen are not registered (masking "a" everywhere would garble every message and
// protect nothing); redaction does not make a secret safe to send anywhere, it only keeps it out of berth's own
// outputs.
//
// The registry is process-wide (Default): the choke points are far apart (the log handler, the status API, the
// plan printer, the state store) and each must see every value registered anywhere. Tests that want their own use
// a Set.
package redact
