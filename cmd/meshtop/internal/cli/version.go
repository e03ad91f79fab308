package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print meshtop's version, commit and Go version",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			v, c := a.io.Build.Version, a.io.Build.Commit
			if v == "" {
				v = "dev"
			}
			if c == "" {
				c = "unknown"
			}
			fmt.Fprintf(a.stdout(), "meshtop %s (commit %s, %s, %s/%s)\n", v, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}
