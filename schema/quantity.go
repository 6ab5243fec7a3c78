package schema

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strings"
	"time"
)

var decimalRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// memoryUnits are the memory suffixes, longest first so "Mi" wins over "M".
var memoryUnits = []struct {
	suffix string
	factor int64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"Pi", 1 << 50}, {"Ei", 1 << 60},
	{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15}, {"E", 1e18},
}

var errNotInt = errors.New("not a whole number")

// scaled returns num × factor ÷ div as an int64, failing when it is not whole or does not fit.
func scaled(num string, factor, div int64) (int64, error) {
	if !decimalRE.MatchString(num) {
		return 0, fmt.Errorf("%q is not a non-negative number", num)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("%q is not a number", num)
	}
	r.Mul(r, new(big.Rat).SetFrac64(factor, div))
	if !r.IsInt() {
		return 0, errNotInt
	}
	n := r.Num()
	if !n.IsInt64() || n.Int64() > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too large", num)
	}
	return n.Int64(), nil
}

// parseCPU converts "250m" (millicores), "0.5" or "2" (CPUs) to thousandths of a CPU.
func parseCPU(s string) (int64, error) {
	s = strings.TrimSpace(s)
	var (
		n   int64
		err error
	)
	if num, ok := strings.CutSuffix(s, "m"); ok {
		n, err = scaled(num, 1, 1)
	} else {
		n, err = scaled(s, 1000, 1)
	}
	if errors.Is(err, errNotInt) {
		return 0, fmt.Errorf("invalid cpu %q: finer than a thousandth of a CPU (1m)", s)
	}
	if err != nil {
		return 0, fmt.Errorf("invalid cpu %q: want millicores (\"250m\") or CPUs (\"0.5\", 2)", s)
	}
	return n, nil
}

// parseMemory converts "64Mi", "1Gi", "512M", "1.5Gi" or a plain number of bytes to bytes.
func parseMemory(s string) (int64, error) {
	s = strings.TrimSpace(s)
	num, factor := s, int64(1)
	for _, u := range memoryUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, factor = n, u.factor
			break
		}
	}
	n, err := scaled(num, factor, 1)
	if errors.Is(err, errNotInt) {
		return 0, fmt.Errorf("invalid memory %q: not a whole number of bytes", s)
	}
	if err != nil {
		return 0, fmt.Errorf("invalid memory %q: want bytes or a number with a unit (Ki, Mi, Gi, Ti, k, M, G, T)", s)
	}
	return n, nil
}

// parseDuration reads a non-negative Go duration string ("5s", "1m30s").
func parseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want a Go duration such as \"500ms\", \"5s\" or \"1m30s\"", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	return Duration(d), nil
}
