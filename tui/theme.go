package tui

import (
	"strconv"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
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

	// r renders every style and says which colour profile and background
	// the colours were resolved for: the terminal's by default, an SSH
	// session's own under `meshtop serve`.
	r       *lipgloss.Renderer
	profile termenv.Profile // what the colours were resolved for
	dark    bool
}

// NewStyles builds the styles of a theme for lipgloss's default renderer
// (the process's terminal; see stylesFor).
func NewStyles(t Theme) Styles {
	return NewStylesFor(t, lipgloss.DefaultRenderer())
}

// NewStylesFor builds the styles of a theme for a renderer: its colour
// profile and background decide the colours, and every style renders
// through it. A server gives each SSH session a renderer of its own, so
// two viewers with different terminals each get their colours.
func NewStylesFor(t Theme, r *lipgloss.Renderer) Styles {
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	return stylesFor(t, r, r.ColorProfile(), r.HasDarkBackground())
}

// stylesFor builds the styles of a theme with every colour resolved once for
// a colour profile and background. A style holding an AdaptiveColor
// converts it on every Render, and on a 256-colour terminal that is a
// nearest-colour search in HSLuv space: it was most of the cost of drawing
// a frame. The resolved colours give the same escape sequences.
func stylesFor(t Theme, r *lipgloss.Renderer, p termenv.Profile, dark bool) Styles {
	c := func(ac lipgloss.AdaptiveColor) lipgloss.TerminalColor { return resolveColor(ac, p, dark) }
	badge := r.NewStyle().Bold(true).Foreground(c(t.OnColor)).Padding(0, 1)
	return Styles{
		Theme:      t,
		r:          r,
		profile:    p,
		dark:       dark,
		Title:      r.NewStyle().Bold(true).Foreground(c(t.Accent)),
		Muted:      r.NewStyle().Foreground(c(t.Muted)),
		Accent:     r.NewStyle().Foreground(c(t.Accent)),
		Good:       r.NewStyle().Foreground(c(t.Good)),
		Warn:       r.NewStyle().Foreground(c(t.Warn)),
		Bad:        r.NewStyle().Foreground(c(t.Bad)),
		Dim:        r.NewStyle().Foreground(c(t.Muted)).Faint(true),
		Bold:       r.NewStyle().Bold(true),
		Header:     r.NewStyle().Bold(true).Foreground(c(t.Accent)),
		Selected:   r.NewStyle().Background(c(t.SelBg)).Bold(true),
		TabActive:  r.NewStyle().Bold(true).Foreground(c(t.Accent)).Underline(true),
		TabPassive: r.NewStyle().Foreground(c(t.Muted)),
		WinActive:  r.NewStyle().Bold(true).Foreground(c(t.OnColor)).Background(c(t.Accent)),
		WinPassive: r.NewStyle().Foreground(c(t.Muted)),
		Banner:     r.NewStyle().Bold(true).Foreground(c(t.OnColor)).Background(c(t.Banner)),
		Error:      r.NewStyle().Foreground(c(t.Bad)).Bold(true),
		Status:     r.NewStyle().Foreground(c(t.Muted)),
		Box:        r.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(c(t.Muted)),
		BadgeGood:  badge.Background(c(t.Good)),
		BadgeWarn:  badge.Background(c(t.Warn)),
		BadgeBad:   badge.Background(c(t.Bad)),
	}
}

// current reports whether the styles were built for their renderer's
// present colour profile and background (a test or NO_COLOR may change them).
func (s Styles) current() bool {
	r := s.renderer()
	return s.profile == r.ColorProfile() && s.dark == r.HasDarkBackground()
}

// renderer is the renderer the styles were built for.
func (s Styles) renderer() *lipgloss.Renderer {
	if s.r == nil {
		return lipgloss.DefaultRenderer()
	}
	return s.r
}

// Plain is an unstyled style of the styles' renderer.
func (s Styles) Plain() lipgloss.Style { return s.renderer().NewStyle() }

// resolveColor picks the light or dark colour and converts it to the
// profile: a 256- or 16-colour index, which lipgloss then uses as it is, or
// the hex colour itself on true-colour (and colourless) terminals.
func resolveColor(ac lipgloss.AdaptiveColor, p termenv.Profile, dark bool) lipgloss.TerminalColor {
	hex := ac.Light
	if dark {
		hex = ac.Dark
	}
	switch c := p.Color(hex).(type) {
	case termenv.ANSI256Color:
		return lipgloss.Color(strconv.Itoa(int(c)))
	case termenv.ANSIColor:
		return lipgloss.Color(strconv.Itoa(int(c)))
	}
	return lipgloss.Color(hex)
}

// styleID identifies a set of styles for caches of what they drew: the
// renderer, the colour profile and the background they were built for.
type styleID struct {
	r       *lipgloss.Renderer
	profile termenv.Profile
	dark    bool
}

func (s Styles) id() styleID { return styleID{s.renderer(), s.profile, s.dark} }
