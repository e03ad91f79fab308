package reliability

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/meshtop/meshtop/data/pgtest"
)

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	if path := os.Getenv("RELIABILITY_REPORT"); path != "" && code == 0 && !isFuzzWorker() {
		if err := report.write(path); err != nil {
			fmt.Fprintln(os.Stderr, "reliability: writing report:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// isFuzzWorker is true in the worker processes `go test -fuzz` spawns; they
// must not overwrite the report.
func isFuzzWorker() bool {
	for _, a := range os.Args {
		if a == "-test.fuzzworker" || a == "-test.fuzzworker=true" {
			return true
		}
	}
	return false
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// meshtopBinary builds cmd/meshtop once per test binary (lazily, so fuzz
// runs of this package don't pay for it) and returns its path.
func meshtopBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "meshtop-reliability-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "meshtop")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/meshtop")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build ./cmd/meshtop: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// report collects the figures docs/RELIABILITY.md is written from.
var report = &recorder{Counts: map[string]int64{}}

type recorder struct {
	mu     sync.Mutex
	Counts map[string]int64 `json:"counts"`
}

// add increments a named count.
func (r *recorder) add(name string, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Counts[name] += n
}

// max keeps the largest value seen under a name.
func (r *recorder) max(name string, v int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Counts[name] = max(r.Counts[name], v)
}

func (r *recorder) write(path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
