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

// Set with -ldflags "-X main.version=… -X main.commit=…" where the go
// command cannot stamp them (a build outside a git checkout); left empty,
// they come from what `go build` stamped (cli.ReadBuild).
var (
	version = ""
	commit  = ""
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], cli.IO{
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		Getenv:     os.Getenv,
		IsTerminal: isTerminal,
		Build:      cli.ReadBuild(version, commit),
	}))
}

func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(file.Fd())
}
