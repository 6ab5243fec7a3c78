// Package gen writes synthetic berth repositories of many workloads, for benchmarks and load tests.
//
// The output is valid, deterministic for a given Options, and spread over several files: berth.cue holds the
// targets and environments, workloads-NNN.cue hold PerFile workloads each. The staging environment overrides the
// replicas of every tenth workload and adds one workload of its own.
package gen

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultPerFile is the number of workloads per generated file when Options.PerFile is 0.
const DefaultPerFile = 500

// Options size a generated repository.
type Options struct {
	// Workloads is the number of top-level workloads.
	Workloads int
	// PerFile is the number of workloads per file; DefaultPerFile when 0.
	PerFile int
}

// Files returns the repository as file name → contents.
func Files(o Options) map[string][]byte {
	per := o.PerFile
	if per <= 0 {
		per = DefaultPerFile
	}
	files := map[string][]byte{}
	var b strings.Builder
	b.WriteString("package berth\n\n")
	b.WriteString("targets: local: {type: \"docker\"}\n")
	b.WriteString("targets: remote: {type: \"docker\", host: \"unix:///var/run/docker.sock\", publicAddress: \"127.0.0.2\"}\n\n")
	b.WriteString("environments: production: {branch: \"main\"}\n")
	b.WriteString("environments: staging: {\n\tbranch: \"staging\"\n\tworkloads: {\n")
	for i := 0; i < o.Workloads; i += 10 {
		fmt.Fprintf(&b, "\t\t%s: replicas: 1\n", name(i))
	}
	b.WriteString("\t\t\"staging-only\": {image: \"berth-example/app:v1\", args: [\"serve\"], provider: \"local\"}\n")
	b.WriteString("\t}\n}\n")
	files["berth.cue"] = []byte(b.String())

	for start := 0; start < o.Workloads; start += per {
		b.Reset()
		b.WriteString("package berth\n\n")
		for i := start; i < o.Workloads && i < start+per; i++ {
			writeWorkload(&b, i)
		}
		files[fmt.Sprintf("workloads-%03d.cue", start/per)] = []byte(b.String())
	}
	return files
}

// Write writes the repository into dir, creating it if needed.
func Write(dir string, o Options) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	files := Files(o)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), files[n], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", n, err)
		}
	}
	return nil
}

func name(i int) string { return fmt.Sprintf("w%05d", i) }

func writeWorkload(b *strings.Builder, i int) {
	fmt.Fprintf(b, "workloads: %s: {\n", name(i))
	fmt.Fprintf(b, "\timage: \"berth-example/app:v%d\"\n", i%3+1)
	provider := "local"
	if i%4 == 3 {
		provider = "remote"
	}
	fmt.Fprintf(b, "\tprovider: %q\n", provider)
	if i%10 == 0 {
		b.WriteString("\treplicas: *2 | int\n")
	} else if i%3 == 0 {
		fmt.Fprintf(b, "\treplicas: %d\n", i%5)
	}
	if i%7 == 0 {
		b.WriteString("\tcommand: [\"/app\"]\n")
	}
	fmt.Fprintf(b, "\targs: [\"serve\", \"--id=%d\"]\n", i)
	fmt.Fprintf(b, "\tenv: {ID: \"%d\", GREETING: \"hello\"}\n", i)
	switch i % 3 {
	case 0:
		fmt.Fprintf(b, "\tports: [{name: \"http\", port: 8080, public: true, hostPort: %d}]\n", 20000+i%40000)
		b.WriteString("\thealth: {http: {path: \"/healthz\", port: 8080}, interval: \"5s\", timeout: \"2s\", retries: 3}\n")
	case 1:
		b.WriteString("\tports: [{port: 9000}, {name: \"metrics\", port: 9100, protocol: \"udp\"}]\n")
		b.WriteString("\thealth: tcp: port: 9000\n")
	default:
		b.WriteString("\thealth: {command: [\"/app\", \"healthcheck\"], startPeriod: \"1s\"}\n")
	}
	if i%2 == 0 {
		fmt.Fprintf(b, "\tresources: {cpu: \"%dm\", memory: \"%dMi\"}\n", 100+i%900, 32+i%200)
	} else {
		b.WriteString("\tresources: {cpu: 0.5, memory: 67108864}\n")
	}
	b.WriteString("}\n")
}
