package gcp

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/berth-dev/berth/schema"
)

// Machine types. A workload's resources choose its instances' machine type when the target sets none
// (MachineTypeFor): the smallest E2 type that fits.
//
//   - No resources at all: e2-small, the provider's default before resources were mapped (so a workload that never
//     declared any keeps its machine).
//   - The shared-core types e2-micro, e2-small and e2-medium, counted at their sustained share of a CPU (0.25, 0.5
//     and 1 vCPU; they burst to 2 vCPU for short periods, which berth does not count on) and their memory (1, 2 and
//     4 GiB), in that order.
//   - Else whole vCPUs: the CPU rounded up to an even count of at least 2, the memory rounded up to a multiple of
//     256 MiB and raised to 0.5 GiB per vCPU; when that memory is over 8 GiB per vCPU the vCPUs are raised instead.
//     That is the predefined e2-highcpu-N (1 GiB per vCPU), e2-standard-N (4 GiB) or e2-highmem-N (8 GiB) when it
//     is exactly one of them, else the custom type e2-custom-<vCPU>-<MiB> (E2 custom rules: an even vCPU count from
//     2 to 32, 0.5 to 8 GiB per vCPU, memory a multiple of 256 MiB, at most 128 GiB).
//   - Beyond 32 vCPU or 128 GiB no E2 type fits: a plan-time problem that says to set machineType.
//
// A machineType setting wins; the workload must fit it when its size is known (a predefined type of the table
// below or a custom type "custom-N-M", "<family>-custom-N-M[-ext]"); a type of unknown size is not checked here
// (Compute Engine refuses a type that does not exist when the template is inserted).

// machineSize is a machine type's CPU (thousandths of a vCPU, the sustained share for shared-core types) and memory
// (MiB).
type machineSize struct{ cpu, mem int64 }

func (m machineSize) resources() schema.Resources {
	return schema.Resources{CPUMillis: m.cpu, MemoryBytes: m.mem << 20}
}

func (m machineSize) String() string {
	return fmt.Sprintf("%s vCPU, %s", strconv.FormatFloat(float64(m.cpu)/1000, 'f', -1, 64), mib(m.mem))
}

func mib(m int64) string {
	if m%1024 == 0 {
		return fmt.Sprintf("%d GiB", m/1024)
	}
	return fmt.Sprintf("%d MiB", m)
}

// defaultMachineType is the machine type of a workload without resources.
const defaultMachineType = "e2-small"

// sharedCore are the E2 shared-core types, smallest first.
var sharedCore = []string{"e2-micro", "e2-small", "e2-medium"}

// predefined machine types whose size berth knows.
var predefined = map[string]machineSize{
	"e2-micro": {250, 1024}, "e2-small": {500, 2048}, "e2-medium": {1000, 4096},
	"n1-standard-1": {1000, 3840}, "n1-standard-2": {2000, 7680}, "n1-standard-4": {4000, 15360},
	"n1-standard-8": {8000, 30720}, "n1-standard-16": {16000, 61440},
	"f1-micro": {200, 614}, "g1-small": {500, 1740},
}

func init() {
	for _, n := range []int64{2, 4, 8, 16, 32} {
		predefined[fmt.Sprintf("e2-standard-%d", n)] = machineSize{n * 1000, n * 4096}
		predefined[fmt.Sprintf("e2-highcpu-%d", n)] = machineSize{n * 1000, n * 1024}
		predefined[fmt.Sprintf("n2-standard-%d", n)] = machineSize{n * 1000, n * 4096}
		predefined[fmt.Sprintf("n2d-standard-%d", n)] = machineSize{n * 1000, n * 4096}
		if n <= 16 {
			predefined[fmt.Sprintf("e2-highmem-%d", n)] = machineSize{n * 1000, n * 8192}
		}
	}
	for _, n := range []int64{1, 2, 4, 8} {
		predefined[fmt.Sprintf("t2d-standard-%d", n)] = machineSize{n * 1000, n * 4096}
	}
}

var customRE = regexp.MustCompile(`^(?:([a-z0-9]+)-)?custom-([0-9]+)-([0-9]+)(-ext)?$`)

// machineSizeOf is the size of a machine type: a predefined one of the table, or a custom type read from its name.
func machineSizeOf(name string) (machineSize, bool) {
	if m, ok := predefined[name]; ok {
		return m, true
	}
	if m := customRE.FindStringSubmatch(name); m != nil {
		cpu, err1 := strconv.ParseInt(m[2], 10, 64)
		mem, err2 := strconv.ParseInt(m[3], 10, 64)
		if err1 == nil && err2 == nil && cpu > 0 && mem > 0 {
			return machineSize{cpu * 1000, mem}, true
		}
	}
	return machineSize{}, false
}

// E2 custom machine type bounds.
const (
	e2MaxVCPU       = 32
	e2MaxMiB        = 128 << 10
	e2MinMiBPerVCPU = 512
	e2MaxMiBPerVCPU = 8 << 10
)

// pickMachineType is the smallest E2 machine type that fits r (see the rule above); an error says which resource
// no E2 type can hold.
func pickMachineType(r schema.Resources) (string, error) {
	if r.CPUMillis <= 0 && r.MemoryBytes <= 0 {
		return defaultMachineType, nil
	}
	mem := (max(r.MemoryBytes, 0) + (1<<20 - 1)) >> 20 // MiB, rounded up
	for _, n := range sharedCore {
		if s := predefined[n]; r.CPUMillis <= s.cpu && mem <= s.mem {
			return n, nil
		}
	}
	vcpu := max(2, (r.CPUMillis+999)/1000)
	vcpu += vcpu % 2
	mem = (mem + 255) / 256 * 256
	if mem > vcpu*e2MaxMiBPerVCPU {
		vcpu = (mem + e2MaxMiBPerVCPU - 1) / e2MaxMiBPerVCPU
		vcpu += vcpu % 2
	}
	mem = max(mem, vcpu*e2MinMiBPerVCPU)
	if vcpu > e2MaxVCPU || mem > e2MaxMiB {
		return "", fmt.Errorf("%dm CPU and %s of memory need %d vCPU and %s: more than an E2 machine has (at most %d vCPU, %s)",
			max(r.CPUMillis, 0), mib((max(r.MemoryBytes, 0)+(1<<20-1))>>20), vcpu, mib(mem), e2MaxVCPU, mib(e2MaxMiB))
	}
	for _, fam := range []struct {
		name   string
		perCPU int64
	}{{"e2-highcpu", 1024}, {"e2-standard", 4096}, {"e2-highmem", 8192}} {
		n := fmt.Sprintf("%s-%d", fam.name, vcpu)
		if s, ok := predefined[n]; ok && s.mem == mem {
			return n, nil
		}
	}
	return fmt.Sprintf("e2-custom-%d-%d", vcpu, mem), nil
}

// machineRule is the How text of resources.cpu and resources.memory.
func machineRule(setting string) string {
	if setting != "" {
		if s, ok := machineSizeOf(setting); ok {
			return fmt.Sprintf("the target's machine type %s (%s): the workload must fit it", setting, s)
		}
		return "the target's machine type " + setting
	}
	return "machine type from resources: the smallest E2 type that fits — e2-micro/small/medium (shared-core, " +
		"counted at their sustained 0.25/0.5/1 vCPU and 1/2/4 GiB), else e2-highcpu/standard/highmem-N when exact, " +
		"else e2-custom-<vCPU>-<MiB> (even vCPU 2-32, 0.5-8 GiB per vCPU in 256 MiB steps, at most 128 GiB); " +
		"none set: e2-small"
}

// machineTypeFor is the machine type w's instances get on a target whose machineType setting is setting ("" when
// unset), and the problems of w's resources with it (Field resources.cpu or resources.memory).
func machineTypeFor(setting string, w schema.Workload) (string, []problem) {
	if setting == "" {
		mt, err := pickMachineType(w.Resources)
		if err != nil {
			field := "resources.memory"
			if w.Resources.CPUMillis > e2MaxVCPU*1000 {
				field = "resources.cpu"
			}
			return "", []problem{{field, "gcp: " + err.Error() + "; set the target's machineType to a larger family's type (n2-highmem-64, m1-ultramem-40, ...)"}}
		}
		return mt, nil
	}
	s, ok := machineSizeOf(setting)
	if !ok {
		return setting, nil
	}
	var out []problem
	if w.Resources.CPUMillis > s.cpu {
		out = append(out, problem{"resources.cpu", fmt.Sprintf("gcp: %dm CPU exceeds the target's machine type %s (%s)", w.Resources.CPUMillis, setting, s)})
	}
	if w.Resources.MemoryBytes > s.mem<<20 {
		out = append(out, problem{"resources.memory", fmt.Sprintf("gcp: %s of memory exceeds the target's machine type %s (%s)", mib((w.Resources.MemoryBytes+(1<<20-1))>>20), setting, s)})
	}
	return setting, out
}

type problem struct{ field, message string }
