package schema

import (
	"testing"
	"time"
)

func TestParseCPU(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"250m", 250, false},
		{"0.5", 500, false},
		{"1.5", 1500, false},
		{"2", 2000, false},
		{"0", 0, false},
		{"1000m", 1000, false},
		{" 100m ", 100, false},
		{"1e0", 1000, false},
		{"0.0001", 0, true},
		{"1.5m", 0, true},
		{"-1", 0, true},
		{"lots", 0, true},
		{"", 0, true},
		{"m", 0, true},
		{"1/2", 0, true},
		{"99999999999999999999", 0, true},
	} {
		got, err := parseCPU(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseCPU(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseMemory(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"64Mi", 64 << 20, false},
		{"1Gi", 1 << 30, false},
		{"1.5Gi", 3 << 29, false},
		{"512M", 512e6, false},
		{"1k", 1000, false},
		{"2Ki", 2048, false},
		{"1Ti", 1 << 40, false},
		{"1048576", 1 << 20, false},
		{"0", 0, false},
		{"64MB", 0, true},
		{"1.5", 0, true},
		{"0.3Ki", 0, true},
		{"-1Mi", 0, true},
		{"Mi", 0, true},
		{"8Ei", 0, true},
		{"", 0, true},
	} {
		got, err := parseMemory(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"5s", 5 * time.Second, false},
		{"1m30s", 90 * time.Second, false},
		{"500ms", 500 * time.Millisecond, false},
		{"0s", 0, false},
		{"-1s", 0, true},
		{"5", 0, true},
		{"5 seconds", 0, true},
		{"", 0, true},
	} {
		got, err := parseDuration(tc.in)
		if (err != nil) != tc.err || got.D() != tc.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, error %v", tc.in, got.D(), err, tc.want, tc.err)
		}
	}
}
