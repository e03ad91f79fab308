package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/progress"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/meshtop/meshtop/data/install"
	"github.com/meshtop/meshtop/data/store"
)

// Installer is what the first-run screen uses of *install.Installer.
type Installer interface {
	Check(ctx context.Context) error
	Objects() []install.Object
	Apply(ctx context.Context, onStep func(install.StepEvent)) (int, error)
}

var _ Installer = (*install.Installer)(nil)

type installState int

const (
	installChecking    installState = iota // checking the preconditions before offering anything
	installPrompt                          // showing what will be created, asking
	installUnavailable                     // not installed and we may not (or cannot) install
	installRunning
	installRefreshing // installed; the first refresh of every view runs
	installFailed
)

// installModel is the first-run screen: preconditions, the offer, the
// install's steps, then the first refresh of every view, so the overview
// it hands over to is filled.
type installModel struct {
	state  installState
	reason string // why we cannot install (read-only, --no-install, a precondition)
	// blocked is a precondition that fails: the database cannot take
	// meshtop as it is (no MeshHook tables, a standby, too old, missing
	// privileges).
	blocked *install.PreconditionError
	objects []install.Object
	steps   []install.StepEvent
	stepAt  time.Time // when the running install step started (model clock)
	applied int
	err     error
	run     *pump[install.StepEvent, InstallFinishedMsg]

	// The first refresh: one row per view, in refresh order.
	refresh    []firstRefreshStep
	refreshRun *pump[FirstRefreshStepMsg, FirstRefreshDoneMsg]
	cancel     context.CancelFunc
	canceling  bool
}

// firstRefreshStep is one view of the first refresh.
type firstRefreshStep struct {
	view    string
	started *time.Time // model clock
	result  *store.RefreshResult
}

func (im *installModel) stepDone(s install.StepEvent, now time.Time) {
	if !s.Done {
		im.stepAt = now
	}
	for i := range im.steps {
		if im.steps[i].Version == s.Version {
			im.steps[i] = s
			return
		}
	}
	im.steps = append(im.steps, s)
}

// pump carries a goroutine's events and its final result to the model: each
// event is one message, after which the model asks for the next (the
// pattern of bubbletea's examples/realtime).
type pump[E, D any] struct {
	events chan E
	done   chan D
	ev     func(E) tea.Msg
	fin    func(D) tea.Msg
}

func newPump[E, D any](ev func(E) tea.Msg, fin func(D) tea.Msg) *pump[E, D] {
	return &pump[E, D]{events: make(chan E, 16), done: make(chan D, 1), ev: ev, fin: fin}
}

// wait returns the next event, or the result once every event was read.
func (p *pump[E, D]) wait() tea.Cmd {
	return func() tea.Msg {
		select {
		case e := <-p.events:
			return p.ev(e)
		case d := <-p.done:
			select {
			case e := <-p.events:
				p.done <- d
				return p.ev(e)
			default:
			}
			return p.fin(d)
		}
	}
}

func checkInstaller(ctx context.Context, inst Installer) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, readTimeout)
		defer cancel()
		return InstallCheckedMsg{Err: inst.Check(ctx)}
	}
}

// startInstall runs Apply in a goroutine; its steps arrive as InstallStepMsg.
func startInstall(ctx context.Context, inst Installer) (*pump[install.StepEvent, InstallFinishedMsg], tea.Cmd) {
	p := newPump(func(s install.StepEvent) tea.Msg { return InstallStepMsg{Step: s} },
		func(d InstallFinishedMsg) tea.Msg { return d })
	return p, func() tea.Msg {
		go func() {
			ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
			defer cancel()
			n, err := inst.Apply(ctx, func(s install.StepEvent) { p.events <- s })
			p.done <- InstallFinishedMsg{Applied: n, Err: err}
		}()
		return p.wait()()
	}
}

// startFirstRefresh refreshes every view, one after the other, in a
// goroutine; each view's start and result arrive as FirstRefreshStepMsg.
// Cancelling ctx (x) cancels the refresh under way: the view keeps its
// (empty) contents and the log records the cancel.
func startFirstRefresh(ctx context.Context, src Source) (*pump[FirstRefreshStepMsg, FirstRefreshDoneMsg], tea.Cmd) {
	p := newPump(func(s FirstRefreshStepMsg) tea.Msg { return s },
		func(d FirstRefreshDoneMsg) tea.Msg { return d })
	return p, func() tea.Msg {
		go func() {
			ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
			defer cancel()
			for _, v := range src.ViewNames() {
				p.events <- FirstRefreshStepMsg{View: v}
				res, err := src.Refresh(ctx, v, false)
				for i := range res {
					p.events <- FirstRefreshStepMsg{View: v, Result: &res[i]}
				}
				if err != nil {
					p.done <- FirstRefreshDoneMsg{Err: err, Canceled: ctx.Err() != nil}
					return
				}
			}
			p.done <- FirstRefreshDoneMsg{}
		}()
		return p.wait()()
	}
}

func (im *installModel) refreshStep(msg FirstRefreshStepMsg, now time.Time) {
	for i := range im.refresh {
		if im.refresh[i].view != msg.View {
			continue
		}
		if msg.Result != nil {
			im.refresh[i].result = msg.Result
		} else {
			im.refresh[i].started = &now
		}
	}
}

// installBusy tells whether the screen shows something that runs (and so
// wants the progress tick).
func (im *installModel) busy() bool {
	return im.state == installRunning || im.state == installRefreshing || im.state == installChecking
}

func (im *installModel) view(c *common, width, height int, spin string) string {
	st := c.styles
	now := c.now()
	wrap := lipgloss.NewStyle().Width(width - 2)
	var out []string
	title := "meshtop's metrics views are not installed in this database"
	switch {
	case im.blocked != nil:
		title = "meshtop cannot be installed in this database"
	case im.state == installRefreshing || im.applied > 0 && im.state != installFailed:
		title = "meshtop is installed: first refresh of the metrics views"
	}
	out = append(out, st.Title.Render(fit(title, width)), "")
	switch im.state {
	case installUnavailable:
		out = append(out, wrap.Render(im.reason))
		if im.blocked != nil && im.blocked.Kind == "privileges" {
			out = append(out, "", wrap.Render(privilegeAdvice))
		}
		out = append(out, "", st.Muted.Render("q quits"))
		return strings.Join(out, "\n")
	case installChecking:
		out = append(out, st.Muted.Render(spin+" checking the database (MeshHook tables, version, privileges)…"))
		return strings.Join(out, "\n")
	case installPrompt:
		out = append(out, wrap.Render(fmt.Sprintf("Installing creates these %d objects (outside the schema: one index built CONCURRENTLY and the change-capture triggers), then refreshes the views once:", len(im.objects))))
		out = append(out, "")
		room := max(1, height-len(out)-3)
		if len(im.objects) > room {
			room-- // the "… and N more" line
		}
		const kindW = 17 // "materialized view"
		for i, o := range im.objects {
			if i >= room && len(im.objects) > room {
				out = append(out, st.Muted.Render(fmt.Sprintf("  … and %d more", len(im.objects)-i)))
				break
			}
			out = append(out, fit(fmt.Sprintf("  %-*s %s", kindW, fit(o.Kind, kindW), o.Name), width))
		}
		out = append(out, "")
		out = append(out, st.Bold.Render("Install now?  y/enter installs · n quits"))
		return strings.Join(out, "\n")
	}
	nameW := max(20, min(40, width-28))
	if len(im.steps) > 0 {
		out = append(out, fmt.Sprintf("Installing (%d migrations):", len(im.steps)))
	}
	for _, s := range im.steps {
		name := fit(s.Name, nameW)
		switch {
		case s.Err != nil:
			out = append(out, st.Bad.Render(fit(fmt.Sprintf("  ✗ %03d %s %s", s.Version, name, oneLine(s.Err.Error())), width)))
		case s.Done:
			out = append(out, st.Good.Render(fit(fmt.Sprintf("  ✓ %03d %s %s", s.Version, name, fmtDur(s.Duration)), width)))
		default:
			out = append(out, st.Warn.Render(fit(fmt.Sprintf("  %s %03d %s %s", spin, s.Version, name, fmtDur(now.Sub(im.stepAt))), width)))
		}
	}
	if len(im.refresh) > 0 {
		out = append(out, "", im.refreshHeader(c, width))
		for _, r := range im.refresh {
			out = append(out, firstRefreshLine(st, r, nameW, width, now, spin))
		}
		if im.state == installRefreshing {
			hint := "x cancels the first refresh (the overview then waits for a refresh from the console)"
			if im.canceling {
				hint = "canceling…"
			}
			out = append(out, "", st.Muted.Render(fit(hint, width)))
		}
	}
	if im.state == installFailed && im.err != nil {
		out = append(out, "")
		out = append(out, st.Error.Render(wrap.Render("install failed: "+oneLine(im.err.Error()))))
		var pe *install.PreconditionError
		if errors.As(im.err, &pe) && pe.Kind == "privileges" {
			out = append(out, "", wrap.Render(privilegeAdvice))
		}
		out = append(out, "", st.Muted.Render("y retries · q quits"))
	}
	return strings.Join(out, "\n")
}

const privilegeAdvice = "Connect as the database owner (on Supabase the postgres role) to install, " +
	"or have it run `meshtop install`; afterwards grant meshtop_reader (and meshtop_refresher to refresh) to this role."

// refreshHeader is "First refresh (1/3 views)" with a bar of the views done.
func (im *installModel) refreshHeader(c *common, width int) string {
	done := 0
	for _, r := range im.refresh {
		if r.result != nil {
			done++
		}
	}
	bar := progress.New(progress.WithSolidFill(string(c.styles.Theme.Accent.Dark)), progress.WithoutPercentage(),
		progress.WithWidth(max(10, min(30, width/4))), progress.WithColorProfile(lipgloss.ColorProfile()))
	return fmt.Sprintf("First refresh (%d/%d views)  %s", done, len(im.refresh), bar.ViewAs(float64(done)/float64(len(im.refresh))))
}

func firstRefreshLine(st Styles, r firstRefreshStep, nameW, width int, now time.Time, spin string) string {
	name := fit(r.view, nameW)
	switch {
	case r.result != nil && r.result.Status == "ok":
		return st.Good.Render(fit(fmt.Sprintf("  ✓ %s %s, %s rows", name, fmtMsVal(r.result.DurationMs), fmtCount(r.result.Rows)), width))
	case r.result != nil && isCancel(r.result.Error):
		return st.Warn.Render(fit(fmt.Sprintf("  ⊘ %s canceled", name), width))
	case r.result != nil:
		return st.Bad.Render(fit(fmt.Sprintf("  ✗ %s %s: %s", name, r.result.Status, r.result.Error.Line()), width))
	case r.started != nil:
		return st.Warn.Render(fit(fmt.Sprintf("  %s %s refreshing %s", spin, name, fmtDur(now.Sub(*r.started))), width))
	}
	return st.Muted.Render(fit("  · "+name+" waiting", width))
}
