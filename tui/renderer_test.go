package tui

import (
	"io"
	"strings"
	"testing"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// Styles built for a renderer colour by that renderer's profile, whatever
// the process's default renderer is: two SSH viewers with different
// terminals each get theirs.
func TestStylesFollowTheirRenderer(t *testing.T) {
	colour := lipgloss.NewRenderer(io.Discard)
	colour.SetColorProfile(termenv.TrueColor)
	colour.SetHasDarkBackground(true)
	plain := lipgloss.NewRenderer(io.Discard)
	plain.SetColorProfile(termenv.Ascii)

	c := NewStylesFor(DefaultTheme(), colour)
	p := NewStylesFor(DefaultTheme(), plain)
	if got := c.Bad.Render("x"); !strings.Contains(got, "\x1b[") || !strings.Contains(got, "248;81;73") {
		t.Fatalf("true-colour renderer: %q has no dark-theme red", got)
	}
	if got := p.Bad.Render("x"); got != "x" {
		t.Fatalf("ascii renderer: %q, want plain x", got)
	}
	if got := c.Plain().Render("x"); got != "x" {
		t.Fatalf("plain style rendered %q", got)
	}
	if !c.current() || !p.current() {
		t.Fatal("styles not current for their own renderers")
	}
	plain.SetColorProfile(termenv.ANSI256)
	if p.current() {
		t.Fatal("a profile change of the renderer went unnoticed")
	}
}
