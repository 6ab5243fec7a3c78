package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"
)

var update = flag.Bool("update", false, "rewrite the golden want.json and want.err files in testdata")

// writeRepo writes the archive's files, except the goldens, into a new temporary directory.
func writeRepo(t testing.TB, a *txtar.Archive) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range a.Files {
		if strings.HasPrefix(f.Name, "want.") {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// golden is the rendered Config plus the positions JSON leaves out.
func golden(t testing.TB, cfg *Config) []byte {
	t.Helper()
	pos := map[string]any{}
	for n, tg := range cfg.Targets {
		pos["targets."+n] = tg.Pos.String()
	}
	for n, e := range cfg.Environments {
		pos["environments."+n] = e.Pos.String()
		for _, w := range e.Workloads {
			m := map[string]string{}
			for k, p := range w.Pos {
				m[k] = p.String()
			}
			pos["environments."+n+".workloads."+w.Name] = m
		}
	}
	b, err := json.MarshalIndent(struct {
		Config    *Config        `json:"config"`
		Positions map[string]any `json:"positions"`
	}{cfg, pos}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func runGolden(t *testing.T, pattern string, check func(t *testing.T, a *txtar.Archive, dir string) (name string, got []byte)) {
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test cases for %s: %v", pattern, err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			a, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			name, got := check(t, a, writeRepo(t, a))
			i := slices.IndexFunc(a.Files, func(f txtar.File) bool { return f.Name == name })
			if *update {
				if i < 0 {
					a.Files = append(a.Files, txtar.File{Name: name})
					i = len(a.Files) - 1
				}
				a.Files[i].Data = got
				if err := os.WriteFile(file, txtar.Format(a), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if i < 0 {
				t.Fatalf("%s has no %s; run go test ./schema -update", file, name)
			}
			if want := a.Files[i].Data; !bytes.Equal(got, want) {
				t.Errorf("%s mismatch\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
			}
		})
	}
}

func TestLoadValid(t *testing.T) {
	runGolden(t, "valid/*.txtar", func(t *testing.T, a *txtar.Archive, dir string) (string, []byte) {
		cfg, err := Load(dir)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		return "want.json", golden(t, cfg)
	})
}

func TestLoadInvalid(t *testing.T) {
	runGolden(t, "invalid/*.txtar", func(t *testing.T, a *txtar.Archive, dir string) (string, []byte) {
		cfg, err := Load(dir)
		if err == nil {
			t.Fatalf("Load succeeded, want an error; config:\n%s", golden(t, cfg))
		}
		var es Errors
		if !errors.As(err, &es) {
			t.Fatalf("Load error is %T, want schema.Errors: %v", err, err)
		}
		for _, e := range es {
			if e.Pos.File == "" || e.Pos.Line == 0 || e.Message == "" {
				t.Errorf("error without position or message: %+v", e)
			}
		}
		return "want.err", []byte(err.Error() + "\n")
	})
}

// TestFileOrder checks that the same declarations, split over files differently or named in another order, render
// equal Configs.
func TestFileOrder(t *testing.T) {
	parts := []string{
		"targets: local: {type: \"docker\"}\n",
		"environments: production: {branch: \"main\"}\nenvironments: staging: {branch: \"staging\", workloads: web: replicas: 1}\n",
		"workloads: web: {image: \"a:v1\", provider: \"local\", replicas: *2 | int, ports: [{port: 80, public: true}]}\n",
		"workloads: web: env: A: \"1\"\nworkloads: worker: {image: \"a:v1\", provider: \"local\", args: [\"work\"]}\n",
	}
	layouts := [][]string{
		{"berth.cue", strings.Join(parts, "")},
		{"a.cue", parts[3], "b.cue", parts[2], "c.cue", parts[1], "d.cue", parts[0]},
		{"z.cue", parts[0] + parts[2], "a.cue", "package berth\n" + parts[1] + parts[3]},
	}
	var first []byte
	for i, files := range layouts {
		dir := t.TempDir()
		for j := 0; j < len(files); j += 2 {
			if err := os.WriteFile(filepath.Join(dir, files[j]), []byte(files[j+1]), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cfg, err := Load(dir)
		if err != nil {
			t.Fatalf("layout %d: %v", i, err)
		}
		got, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = got
			continue
		}
		if !bytes.Equal(got, first) {
			t.Errorf("layout %d renders differently:\n%s\nwant\n%s", i, got, first)
		}
	}
}

func TestLoadNoFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "x.cue"), []byte("environments: p: branch: \"main\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if !errors.Is(err, ErrNoFiles) {
		t.Fatalf("Load = %v, want ErrNoFiles", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil || errors.Is(err, ErrNoFiles) {
		t.Fatalf("Load(missing dir) = %v, want a read error", err)
	}
}

// TestSharedRendering checks that environments get independent copies of a shared workload.
func TestSharedRendering(t *testing.T) {
	dir := t.TempDir()
	src := "targets: l: type: \"docker\"\nenvironments: a: branch: \"a\"\nenvironments: b: branch: \"b\"\n" +
		"workloads: w: {image: \"x\", provider: \"l\", args: [\"1\"], env: K: \"v\"}\n"
	if err := os.WriteFile(filepath.Join(dir, "berth.cue"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Environments["a"].Workloads[0], cfg.Environments["b"].Workloads[0]
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("environments differ: %+v vs %+v", a, b)
	}
	a.Args[0], a.Env["K"] = "changed", "changed"
	if b.Args[0] != "1" || b.Env["K"] != "v" {
		t.Fatalf("changing one environment's workload changed the other's: %+v", b)
	}
}

func TestSource(t *testing.T) {
	if !bytes.Contains(Source(), []byte("#Workload:")) {
		t.Fatal("Source does not hold #Workload")
	}
	s := Source()
	s[0] = 'X'
	if Source()[0] == 'X' {
		t.Fatal("Source returns the embedded slice itself")
	}
}
