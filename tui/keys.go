package tui

import "github.com/charmbracelet/bubbles/key"

// keyMap holds every binding of the dashboard. The help screen and the short
// help line are generated from it, so a key that is not here does not exist.
type keyMap struct {
	Up, Down, Top, Bottom, PageUp, PageDown key.Binding
	Enter, Back, Filter                     key.Binding
	NextScreen, PrevScreen                  key.Binding
	Window1, Window2, Window3, Window4      key.Binding
	Sort, SortDir, Worse                    key.Binding
	Copy                                    key.Binding
	Failed, Slowest, Timeline, CopyRun      key.Binding
	Pause, Faster, Slower                   key.Binding
	Refresh, RefreshAll, Cancel             key.Binding
	LogUp, LogDown                          key.Binding
	Help, Quit                              key.Binding
	Yes, No                                 key.Binding
}

func newKeyMap(readOnly bool) keyMap {
	k := keyMap{
		Up:         key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:       key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		Top:        key.NewBinding(key.WithKeys("g", "home"), key.WithHelp("g", "top")),
		Bottom:     key.NewBinding(key.WithKeys("G", "end"), key.WithHelp("G", "bottom")),
		PageUp:     key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup", "page up")),
		PageDown:   key.NewBinding(key.WithKeys("pgdown", "ctrl+f"), key.WithHelp("pgdn", "page down")),
		Enter:      key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "details")),
		Back:       key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back/clear")),
		Filter:     key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		NextScreen: key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next screen")),
		PrevScreen: key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "prev screen")),
		Window1:    key.NewBinding(key.WithKeys("1"), key.WithHelp("1", "window 1h")),
		Window2:    key.NewBinding(key.WithKeys("2"), key.WithHelp("2", "window 24h")),
		Window3:    key.NewBinding(key.WithKeys("3"), key.WithHelp("3", "window 7d")),
		Window4:    key.NewBinding(key.WithKeys("4"), key.WithHelp("4", "window 30d")),
		Sort:       key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "sort column")),
		SortDir:    key.NewBinding(key.WithKeys("S"), key.WithHelp("S", "sort direction")),
		Worse:      key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "what got worse")),
		Copy:       key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "copy id")),
		Failed:     key.NewBinding(key.WithKeys("f"), key.WithHelp("f", "failed runs")),
		Slowest:    key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "slowest runs")),
		Timeline:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "run timeline")),
		CopyRun:    key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "copy run id")),
		Pause:      key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "pause polling")),
		// pg_activity's meaning: + raises the refresh interval, - lowers it.
		Slower:     key.NewBinding(key.WithKeys("+", "="), key.WithHelp("+", "poll less often")),
		Faster:     key.NewBinding(key.WithKeys("-"), key.WithHelp("-", "poll more often")),
		Refresh:    key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "refresh view")),
		RefreshAll: key.NewBinding(key.WithKeys("R"), key.WithHelp("R", "refresh all")),
		Cancel:     key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "cancel refresh")),
		LogUp:      key.NewBinding(key.WithKeys("[", "ctrl+u"), key.WithHelp("[", "log up")),
		LogDown:    key.NewBinding(key.WithKeys("]", "ctrl+d"), key.WithHelp("]", "log down")),
		Help:       key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Quit:       key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
		Yes:        key.NewBinding(key.WithKeys("y", "enter"), key.WithHelp("y/enter", "confirm")),
		No:         key.NewBinding(key.WithKeys("n", "esc"), key.WithHelp("n/esc", "no")),
	}
	if readOnly {
		// Read-only hides every action that writes; the help never offers them.
		k.Refresh.SetEnabled(false)
		k.RefreshAll.SetEnabled(false)
		k.Cancel.SetEnabled(false)
	}
	return k
}

// globalHelp is the help screen's group of the keys every screen has.
func (k keyMap) globalHelp() []key.Binding {
	return []key.Binding{k.NextScreen, k.PrevScreen, k.Window1, k.Window2, k.Window3, k.Window4,
		k.Pause, k.Slower, k.Faster, k.Help, k.Quit}
}

// move is the short help's summary of up and down.
func (k keyMap) move(desc string) key.Binding {
	return key.NewBinding(key.WithKeys("up", "down"), key.WithHelp("↑↓/jk", desc))
}

// Window1To4 is a display-only binding summarising the window keys.
func (k keyMap) Window1To4() key.Binding {
	return key.NewBinding(key.WithKeys("1", "2", "3", "4"), key.WithHelp("1-4", "window"))
}
