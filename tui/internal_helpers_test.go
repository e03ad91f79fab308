package tui

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// Accessors for tests: the screens of a model. Production code never
// reaches into a screen; tests read (and set up) their state.
func (m Model) ov() *overviewModel { return m.screens[scrOverview].(*overviewModel) }
func (m Model) dt() *detailModel   { return m.screens[scrDetail].(*detailModel) }
func (m Model) cs() *consoleModel  { return m.screens[scrConsole].(*consoleModel) }
func (m Model) inst() *installModel {
	return m.screens[scrInstall].(*installModel)
}

// upd sends msg to the model and returns the model it became (commands
// are not run: tests feed the results they want as messages).
func upd(m Model, msgs ...tea.Msg) Model {
	for _, msg := range msgs {
		tm, _ := m.Update(msg)
		m = tm.(Model)
	}
	return m
}

// testSeq numbers the results tests feed: above any read a model asked
// for, so none is taken for stale.
var testSeq = 1 << 30

func nextTestSeq() int {
	testSeq++
	return testSeq
}

// allBindings is every binding of every screen's help and the global ones.
func allBindings(m Model) [][]key.Binding {
	var out [][]key.Binding
	for _, s := range m.screens {
		out = append(out, s.FullHelp()...)
	}
	return append(out, m.c.keys.globalHelp())
}
