package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// ReadBuild is what this binary says it is: version and commit as set with
// -ldflags "-X main.version=… -X main.commit=…" (packagers building
// outside a git checkout), else as the go command stamped them into the
// binary. `go build` (and so `make build`) in a git checkout stamps the
// commit (vcs.revision) and a version derived from it: the tag, or a
// pseudo-version, with +dirty for uncommitted changes; `go install
// …/cmd/meshtop@vX.Y.Z` stamps the version.
func ReadBuild(version, commit string) BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return stamped(BuildInfo{Version: version, Commit: commit}, bi)
}

// stamped fills what b lacks from bi (nil: nothing stamped).
func stamped(b BuildInfo, bi *debug.BuildInfo) BuildInfo {
	if bi == nil {
		return b
	}
	if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	if b.Commit == "" {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				b.Commit = s.Value
			}
		}
	}
	return b
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print meshtop's version, commit and Go version",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			b := a.io.Build.orUnknown()
			fmt.Fprintf(a.stdout(), "meshtop %s (commit %s, %s, %s/%s)\n", b.Version, b.Commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}

// orUnknown says "dev" and "unknown" for what nothing set (a test binary,
// a build outside a checkout without -ldflags).
func (b BuildInfo) orUnknown() BuildInfo {
	if b.Version == "" {
		b.Version = "dev"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	return b
}
