// Command meshtop-shots regenerates the README's screenshots: it starts its
// own throwaway PostgreSQL cluster, builds a deterministic MeshHook data set
// (fixed seed, fixed anchor, pinned metrics clock), drives the real dashboard
// model at 120×40 in true colour through keys and messages, captures each
// final frame's ANSI text and renders it to PNG with charmbracelet/freeze.
//
//	go run ./cmd/meshtop-shots -out screenshots
//
// Running it twice gives byte-identical PNGs: everything that depends on the
// wall clock or the machine (pids, lock ages, refresh durations, the refresh
// log's timestamps, relation sizes, the server's port and minor version) is
// replaced by constants between the store and the model; every metric still
// comes from PostgreSQL.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "meshtop-shots:", err)
		os.Exit(1)
	}
}

func run() error {
	out := flag.String("out", "screenshots", "directory the PNGs are written to")
	ansiDir := flag.String("ansi", "", "also keep each frame's ANSI text (<name>.ansi) in this directory")
	only := flag.String("only", "", "comma-separated shot names to render (default: all)")
	freeze := flag.String("freeze", defaultFreeze, "freeze module@version used to render PNGs")
	flag.Parse()

	want := map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	for n := range want {
		if !knownShot(n) {
			return fmt.Errorf("unknown shot %q (have %s)", n, strings.Join(shotNames(), ", "))
		}
	}

	// Real colours on a dark background, whatever terminal runs this.
	lipgloss.SetColorProfile(termenv.TrueColor)
	lipgloss.SetHasDarkBackground(true)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()

	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", *out, err)
	}
	work, err := os.MkdirTemp("", "meshtop-shots-")
	if err != nil {
		return fmt.Errorf("creating a work directory: %w", err)
	}
	defer os.RemoveAll(work)

	logf("building %s", *freeze)
	r, err := newRenderer(ctx, *freeze, work)
	if err != nil {
		return err
	}

	logf("starting a throwaway PostgreSQL cluster")
	l, err := startLab(ctx)
	if err != nil {
		return err
	}
	defer l.close()

	for _, s := range shots {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		logf("capturing %s", s.name)
		frame, err := s.capture(ctx, l)
		if err != nil {
			return fmt.Errorf("capturing %s: %w", s.name, err)
		}
		if *ansiDir != "" {
			if err := os.MkdirAll(*ansiDir, 0o755); err != nil {
				return fmt.Errorf("creating %s: %w", *ansiDir, err)
			}
			if err := os.WriteFile(filepath.Join(*ansiDir, s.name+".ansi"), []byte(frame), 0o644); err != nil {
				return fmt.Errorf("writing %s.ansi: %w", s.name, err)
			}
		}
		png := filepath.Join(*out, s.name+".png")
		if err := r.render(ctx, s.name, frame, png); err != nil {
			return fmt.Errorf("rendering %s: %w", s.name, err)
		}
		logf("wrote %s", png)
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "meshtop-shots: "+format+"\n", args...)
}
