package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/meshtop/meshtop/data/install"
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
	installPrompt      installState = iota // showing what will be created, asking
	installUnavailable                     // not installed and we may not install
	installChecking
	installRunning
	installFailed
)

// installModel is the first-run screen.
type installModel struct {
	state   installState
	reason  string // why we cannot install (read-only, --no-install, no installer)
	objects []install.Object
	steps   []install.StepEvent
	err     error
	run     *installRun
}

type installRun struct {
	steps chan install.StepEvent
	done  chan InstallFinishedMsg
}

func (im *installModel) stepDone(s install.StepEvent) {
	for i := range im.steps {
		if im.steps[i].Version == s.Version {
			im.steps[i] = s
			return
		}
	}
	im.steps = append(im.steps, s)
}

func checkInstaller(ctx context.Context, inst Installer) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, readTimeout)
		defer cancel()
		return InstallCheckedMsg{Err: inst.Check(ctx)}
	}
}

// startInstall runs Apply in a goroutine; its steps arrive as InstallStepMsg
// through a channel command re-issued after each step.
func startInstall(ctx context.Context, inst Installer) (*installRun, tea.Cmd) {
	r := &installRun{steps: make(chan install.StepEvent, 16), done: make(chan InstallFinishedMsg, 1)}
	return r, func() tea.Msg {
		go func() {
			ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
			defer cancel()
			n, err := inst.Apply(ctx, func(s install.StepEvent) { r.steps <- s })
			r.done <- InstallFinishedMsg{Applied: n, Err: err}
		}()
		return r.wait()()
	}
}

func (r *installRun) wait() tea.Cmd {
	return func() tea.Msg {
		select {
		case s := <-r.steps:
			return InstallStepMsg{Step: s}
		case d := <-r.done:
			select {
			case s := <-r.steps:
				r.done <- d
				return InstallStepMsg{Step: s}
			default:
			}
			return d
		}
	}
}

func (im *installModel) view(c *common, width, height int) string {
	st := c.styles
	var out []string
	out = append(out, st.Title.Render("meshtop's metrics views are not installed in this database"))
	out = append(out, "")
	switch im.state {
	case installUnavailable:
		out = append(out, im.reason)
		out = append(out, "", st.Muted.Render("q quits"))
		return strings.Join(out, "\n")
	case installPrompt:
		out = append(out, fmt.Sprintf("Installing creates these %d objects (nothing outside the schema is changed except one index built CONCURRENTLY):", len(im.objects)))
		out = append(out, "")
		room := height - 8
		for i, o := range im.objects {
			if i >= room && len(im.objects) > room {
				out = append(out, st.Muted.Render(fmt.Sprintf("  … and %d more", len(im.objects)-i)))
				break
			}
			out = append(out, fmt.Sprintf("  %-18s %s", o.Kind, o.Name))
		}
		out = append(out, "")
		out = append(out, st.Bold.Render("Install now?  y/enter installs · n quits"))
		return strings.Join(out, "\n")
	case installChecking:
		out = append(out, st.Muted.Render("checking preconditions…"))
		return strings.Join(out, "\n")
	}
	if len(im.steps) > 0 || im.state == installRunning {
		out = append(out, "Installing:")
	}
	for _, s := range im.steps {
		switch {
		case s.Err != nil:
			out = append(out, st.Bad.Render(fit(fmt.Sprintf("  ✗ %03d %-40s %s", s.Version, s.Name, oneLine(s.Err.Error())), width)))
		case s.Done:
			out = append(out, st.Good.Render(fmt.Sprintf("  ✓ %03d %-40s %s", s.Version, s.Name, fmtDur(s.Duration))))
		default:
			out = append(out, st.Warn.Render(fmt.Sprintf("  … %03d %-40s", s.Version, s.Name)))
		}
	}
	if im.state == installFailed && im.err != nil {
		out = append(out, "")
		wrap := lipgloss.NewStyle().Width(width - 2)
		out = append(out, st.Error.Render(wrap.Render("install failed: "+oneLine(im.err.Error()))))
		var pe *install.PreconditionError
		if errors.As(im.err, &pe) && pe.Kind == "privileges" {
			out = append(out, "", wrap.Render("Connect as the database owner (on Supabase the postgres role) to install, "+
				"or have it run `meshtop install`; afterwards grant meshtop_reader (and meshtop_refresher to refresh) to this role."))
		}
		out = append(out, "", st.Muted.Render("y retries · q quits"))
	}
	return strings.Join(out, "\n")
}
