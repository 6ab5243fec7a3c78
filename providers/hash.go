package providers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/berth-dev/berth/schema"
)

// SpecHash is a short, stable hash of what each replica of w runs. Positions, the provider (target) name and the
// replica count are left out: moving a workload between targets is a migration, and scaling adds or removes
// replicas without replacing the others, so neither is a spec change. How the workload moves (Migration,
// Stateful) and the stable names of its ports (Port.Endpoint) are not what a replica runs either.
func SpecHash(w schema.Workload) string {
	w.Provider = ""
	w.Replicas = 0
	w.Pos = nil
	w.Migration = schema.Migration{}
	w.Stateful = false
	if len(w.Ports) > 0 {
		ps := make([]schema.Port, len(w.Ports))
		for i, p := range w.Ports {
			p.Endpoint = nil
			ps[i] = p
		}
		w.Ports = ps
	}
	b, err := json.Marshal(w) // map keys are sorted: stable
	if err != nil {
		panic("providers: hashing a workload: " + err.Error()) // every field is plain data
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12]
}
