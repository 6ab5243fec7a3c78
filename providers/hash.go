package providers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/berth-dev/berth/schema"
)

// SpecHash is a short, stable hash of everything a provider runs for w. Positions and the provider (target) name are
// left out: moving a workload between targets is a migration, not a spec change.
func SpecHash(w schema.Workload) string {
	w.Provider = ""
	w.Pos = nil
	b, err := json.Marshal(w) // map keys are sorted: stable
	if err != nil {
		panic("providers: hashing a workload: " + err.Error()) // every field is plain data
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12]
}
