package tui

import (
	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/store"
)

// Results of reads. Each carries what it was asked for so a late answer to
// an old question (another window, another workflow) can be dropped.

// OverviewLoadedMsg is the result of one overview poll.
type OverviewLoadedMsg struct {
	Seq      int // order of the read: a result older than the data shown is dropped
	Window   store.Window
	Overview store.Overview // the Δ columns' comparison included (Overview.Changes)
	Err      error
}

// WorkflowLoadedMsg is the result of reading one workflow's detail.
type WorkflowLoadedMsg struct {
	Seq    int
	ID     string
	Window store.Window
	Detail store.WorkflowDetail
	Err    error
}

// RunsLoadedMsg is the result of reading a workflow's drill-down list.
type RunsLoadedMsg struct {
	Seq        int
	WorkflowID string
	Window     store.Window
	Kind       store.RunKind
	List       store.RunList
	Err        error
}

// RunLoadedMsg is the result of reading a run's timeline.
type RunLoadedMsg struct {
	Seq      int
	ID       string
	Timeline store.RunTimeline
	Err      error
}

// ConsoleLoadedMsg is the result of reading the refresh console's data.
type ConsoleLoadedMsg struct {
	Seq      int
	Views    []store.ViewStatus
	Log      []store.RefreshLogEntry
	Running  []store.RunningRefresh
	Schedule store.Schedule
	// Capture is change capture's state, informative: nil (a schema before
	// the capture bound, a role that may not read it) leaves the console
	// without its capture line, not without its data.
	Capture *store.CaptureLog
	Err     error
}

// RunningLoadedMsg is the result of the cheap poll made while watching a
// refresh.
type RunningLoadedMsg struct {
	Seq     int // order of the read, as for ConsoleLoadedMsg: the running refreshes of both are ordered together
	Running []store.RunningRefresh
	Err     error
}

// PollTickMsg fires every poll interval. Seq stamps the loop it belongs to:
// a tick whose Seq is not the model's current one is stale and dropped, so a
// manual refresh or an interval change never doubles the loop.
type PollTickMsg struct{ Seq int }

// WatchTickMsg advances the elapsed time of a watched refresh.
type WatchTickMsg struct{ Seq int }

// RefreshFinishedMsg is the result of a refresh this meshtop asked for.
type RefreshFinishedMsg struct {
	View    string
	Results []store.RefreshResult
	Err     error
}

// CancelFinishedMsg is the result of cancelling running refreshes.
type CancelFinishedMsg struct {
	View     string
	Canceled int
	Err      error
}

// RefreshEventMsg is a NOTIFY from the refresh channel: a refresh started
// or finished somewhere.
type RefreshEventMsg struct {
	Gen   int
	Event store.RefreshEvent
}

// ListenEndedMsg says the LISTEN connection ended (lost or cancelled).
type ListenEndedMsg struct {
	Gen int
	Err error
}

// ListenRetryMsg asks to LISTEN again after a back-off.
type ListenRetryMsg struct{ Gen int }

// ReconnectTickMsg is the moment to try the database again.
type ReconnectTickMsg struct{ Attempt int }

// ReconnectedMsg is the result of a reconnect attempt.
type ReconnectedMsg struct {
	Attempt int
	Server  store.ServerInfo
	Err     error
}

// InstalledCheckedMsg says whether the metrics views are installed.
type InstalledCheckedMsg struct {
	Installed bool
	Err       error
}

// InstallCheckedMsg is the result of the installer's precondition check,
// with the number of migrations install would apply.
type InstallCheckedMsg struct {
	Pending int
	Err     error
}

// InstallStepMsg is one step of a running install.
type InstallStepMsg struct{ Step install.StepEvent }

// InstallFinishedMsg says the install ended.
type InstallFinishedMsg struct {
	Applied int
	Err     error
}

// FirstRefreshStepMsg is one view of the first refresh after an install:
// started (Result nil) or finished.
type FirstRefreshStepMsg struct {
	View   string
	Result *store.RefreshResult
}

// FirstRefreshDoneMsg says the first refresh ended; Canceled when the
// operator canceled it.
type FirstRefreshDoneMsg struct {
	Err      error
	Canceled bool
}

// CopiedMsg says a workflow or run id was sent to the clipboard.
type CopiedMsg struct {
	Text string
	Err  error
}
