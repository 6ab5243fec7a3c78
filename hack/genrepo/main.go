// Command genrepo writes a synthetic berth repository of N workloads, for load tests and benchmarks.
//
//	go run ./hack/genrepo -n 1000 -o /tmp/repo
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/berth-dev/berth/schema/gen"
)

func main() {
	n := flag.Int("n", 1000, "number of workloads")
	out := flag.String("o", "", "output directory (created if missing)")
	per := flag.Int("per-file", gen.DefaultPerFile, "workloads per file")
	flag.Parse()
	if *out == "" || *n < 0 {
		fmt.Fprintln(os.Stderr, "usage: genrepo -n N -o DIR [-per-file K]")
		os.Exit(2)
	}
	if err := gen.Write(*out, gen.Options{Workloads: *n, PerFile: *per}); err != nil {
		fmt.Fprintln(os.Stderr, "genrepo:", err)
		os.Exit(1)
	}
}
