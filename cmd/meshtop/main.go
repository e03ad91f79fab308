// Command meshtop shows MeshHook's workflow metrics from materialized views
// in PostgreSQL: a terminal dashboard, and subcommands for scripts. The
// commands live in internal/cli; this file only wires the process to them.
package main

import (
	"context"
	"os"

	"github.com/charmbracelet/x/term"

	"github.com/meshtop/meshtop/cmd/meshtop/internal/cli"
)

// Set with -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = ""
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], cli.IO{
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		Getenv:     os.Getenv,
		IsTerminal: isTerminal,
		Build:      cli.BuildInfo{Version: version, Commit: commit},
	}))
}

func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(file.Fd())
}
