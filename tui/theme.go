package tui

import (
	"github.com/charmbracelet/lipgloss"
)

// Theme is meshtop's palette. Every colour the dashboard uses is named here;
// no other file holds a colour literal. Each colour adapts to light and dark
// terminals.
type Theme struct {
	Text    lipgloss.AdaptiveColor
	Muted   lipgloss.AdaptiveColor
	Accent  lipgloss.AdaptiveColor
	Good    lipgloss.AdaptiveColor
	Warn    lipgloss.AdaptiveColor
	Bad     lipgloss.AdaptiveColor
	SelBg   lipgloss.AdaptiveColor
	Banner  lipgloss.AdaptiveColor
	OnColor lipgloss.AdaptiveColor
}

// DefaultTheme is the palette used unless a test swaps it.
func DefaultTheme() Theme {
	return Theme{
		Text:    lipgloss.AdaptiveColor{Light: "#1f2328", Dark: "#e6edf3"},
		Muted:   lipgloss.AdaptiveColor{Light: "#6e7781", Dark: "#8b949e"},
		Accent:  lipgloss.AdaptiveColor{Light: "#0550ae", Dark: "#58a6ff"},
		Good:    lipgloss.AdaptiveColor{Light: "#1a7f37", Dark: "#3fb950"},
		Warn:    lipgloss.AdaptiveColor{Light: "#9a6700", Dark: "#d29922"},
		Bad:     lipgloss.AdaptiveColor{Light: "#cf222e", Dark: "#f85149"},
		SelBg:   lipgloss.AdaptiveColor{Light: "#ddf4ff", Dark: "#1f3a5f"},
		Banner:  lipgloss.AdaptiveColor{Light: "#bf8700", Dark: "#9e6a03"},
		OnColor: lipgloss.AdaptiveColor{Light: "#ffffff", Dark: "#0d1117"},
	}
}

// Styles are the lipgloss styles built once from a Theme.
type Styles struct {
	Theme Theme

	Title      lipgloss.Style
	Muted      lipgloss.Style
	Accent     lipgloss.Style
	Good       lipgloss.Style
	Warn       lipgloss.Style
	Bad        lipgloss.Style
	Dim        lipgloss.Style
	Bold       lipgloss.Style
	Header     lipgloss.Style // table header
	Selected   lipgloss.Style // selected row
	TabActive  lipgloss.Style
	TabPassive lipgloss.Style
	WinActive  lipgloss.Style
	WinPassive lipgloss.Style
	Banner     lipgloss.Style
	Error      lipgloss.Style
	Status     lipgloss.Style
	Box        lipgloss.Style
	BadgeGood  lipgloss.Style
	BadgeWarn  lipgloss.Style
	BadgeBad   lipgloss.Style
}

// NewStyles builds the styles of a theme.
func NewStyles(t Theme) Styles {
	badge := lipgloss.NewStyle().Bold(true).Foreground(t.OnColor).Padding(0, 1)
	return Styles{
		Theme:      t,
		Title:      lipgloss.NewStyle().Bold(true).Foreground(t.Accent),
		Muted:      lipgloss.NewStyle().Foreground(t.Muted),
		Accent:     lipgloss.NewStyle().Foreground(t.Accent),
		Good:       lipgloss.NewStyle().Foreground(t.Good),
		Warn:       lipgloss.NewStyle().Foreground(t.Warn),
		Bad:        lipgloss.NewStyle().Foreground(t.Bad),
		Dim:        lipgloss.NewStyle().Foreground(t.Muted).Faint(true),
		Bold:       lipgloss.NewStyle().Bold(true),
		Header:     lipgloss.NewStyle().Bold(true).Foreground(t.Accent),
		Selected:   lipgloss.NewStyle().Background(t.SelBg).Bold(true),
		TabActive:  lipgloss.NewStyle().Bold(true).Foreground(t.Accent).Underline(true),
		TabPassive: lipgloss.NewStyle().Foreground(t.Muted),
		WinActive:  lipgloss.NewStyle().Bold(true).Foreground(t.OnColor).Background(t.Accent),
		WinPassive: lipgloss.NewStyle().Foreground(t.Muted),
		Banner:     lipgloss.NewStyle().Bold(true).Foreground(t.OnColor).Background(t.Banner),
		Error:      lipgloss.NewStyle().Foreground(t.Bad).Bold(true),
		Status:     lipgloss.NewStyle().Foreground(t.Muted),
		Box:        lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(t.Muted),
		BadgeGood:  badge.Background(t.Good),
		BadgeWarn:  badge.Background(t.Warn),
		BadgeBad:   badge.Background(t.Bad),
	}
}
