package providers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/berth-dev/berth/schema"
)

// SpecHash is a short, stable hash of what each replica of w runs. Positions, the provider (target) name and the
// replica count are left out: moving a workload between targets is a migration, and scaling adds or removes
// replicas without replacing the others, so neither is a spec change.
func SpecHash(w schema.Workload) string {
	w.Provider = ""
	w.Replicas = 0
	w.Pos = nil
	b, err := json.Marshal(w) // map keys are sorted: stable
	if err != nil {
		panic("providers: hashing a workload: " + err.Error()) // every field is plain data
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12]
}
