package install

// Exported for tests.
var (
	VersionProblem = versionProblem
	VersionWarning = versionWarning
)
