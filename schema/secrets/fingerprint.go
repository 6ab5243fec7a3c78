package secrets

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// fingerprintLabel separates fingerprint keys from any other use of the identities.
const fingerprintLabel = "berth.dev/secret-fingerprint/v1"

// FingerprintLen is the length of a fingerprint: 16 hex digits (64 bits of HMAC-SHA256).
const FingerprintLen = 16

// Fingerprint is a keyed hash of a secret's value, short enough for a label or a tag, so that a rotated secret is
// seen as a change from the runtime alone while the value stays unguessable without the key (a plain hash of a
// short password could be brute-forced by anyone who can read labels). It is HMAC-SHA256(key, value) in hex,
// cut to FingerprintLen.
//
// The key must be the same across restarts and across the replicas of one controller, or every workload using a
// secret is rolled once: use Decrypter.FingerprintKey when the controller holds age identities, else a key made
// once with NewFingerprintKey and kept where the controller keeps its state.
func Fingerprint(key, value []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(value)
	return hex.EncodeToString(m.Sum(nil))[:FingerprintLen]
}

// FingerprintKey is the controller's fingerprint key, derived from its age identities: HMAC-SHA256 keyed by the
// identities (sorted, one per line) over a fixed label. It needs no storage, survives restarts and is the same on
// every replica given the same identities. Adding or removing an identity changes it, which rolls the workloads
// that use secrets once. A Decrypter made by NewDecrypter has a random one.
func (d *Decrypter) FingerprintKey() []byte { return append([]byte(nil), d.fpKey...) }

// NewFingerprintKey returns a random 32-byte key, for a controller without age identities; keep it with the
// controller's state so that it survives restarts.
func NewFingerprintKey() ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("secrets: fingerprint key: %w", err)
	}
	return k, nil
}
