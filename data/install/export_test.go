package install

// Exported for tests.
var (
	VersionProblem = versionProblem
	VersionWarning = versionWarning
)

// SetPause makes in call pause at its named points (see Installer.pause).
func SetPause(in *Installer, pause func(at string)) { in.pause = pause }
