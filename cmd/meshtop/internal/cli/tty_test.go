package cli

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/meshtop once per test run (TestMain removes it).
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "meshtop-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "meshtop")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/meshtop/meshtop/cmd/meshtop").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building meshtop: %v", buildErr)
	}
	return binPath
}

// TestDashboardInTerminal opens the dashboard under a pseudo-terminal
// (the real binary, 120×40), waits for the overview and quits with q.
func TestDashboardInTerminal(t *testing.T) {
	t.Parallel()
	db := refreshed(t)
	bin := binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--dsn", db.DSN, "--no-install")
	cmd.Env = append(os.Environ(), "TERM=xterm-256color", "NO_COLOR=1")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var screen syncBuffer
	go func() { _, _ = io.Copy(&screen, f) }()
	waitFor(t, "the overview", time.Minute, func() bool {
		return strings.Contains(screen.String(), db.Name) && strings.Contains(screen.String(), "Hubspot")
	})
	if _, err := f.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("dashboard exited with %v; screen:\n%s", err, screen.String())
	}
	if strings.Contains(screen.String(), "meshtop: ") {
		t.Errorf("error on quit: %s", screen.String())
	}
}

// TestDemoInTerminal: `meshtop demo` under a pseudo-terminal shows the
// dashboard; q quits, and the cluster and its directory are gone.
func TestDemoInTerminal(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo", "--runs", "3000", "--workflows", "6", "--traffic", "2")
	cmd.Env = append(os.Environ(), "TERM=xterm-256color", "NO_COLOR=1")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var screen syncBuffer
	go func() { _, _ = io.Copy(&screen, f) }()
	waitFor(t, "the dashboard", 2*time.Minute, func() bool {
		s := screen.String()
		return strings.Contains(s, "demo postgres@127.0.0.1:") && strings.Contains(s, "workflows")
	})
	if _, err := f.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo exited with %v; screen:\n%s", err, screen.String())
	}
	m := regexp.MustCompile(`PostgreSQL data in (\S+) `).FindStringSubmatch(screen.String())
	if m == nil {
		t.Fatalf("no data dir line:\n%s", screen.String())
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("%s still exists after q (%v)", m[1], err)
	}
}
