package main

import (
	"fmt"
	"html"
	"regexp"
	"strconv"
	"strings"

	"github.com/charmbracelet/x/ansi"
)

var (
	textRe  = regexp.MustCompile(`(?s)<text x="([0-9.]+)px"([^>]*)>(.*?)</text>`)
	tspanRe = regexp.MustCompile(`(?s)<tspan([^>]*?)(?:/>|>(.*?)</tspan>)`)
	dxRe    = regexp.MustCompile(` dx="[^"]*"`)
)

// pinToGrid gives every character of freeze's SVG text an absolute x: its
// terminal column × cell. freeze lets text flow with the font's advances,
// so one glyph drawn from a fallback font (wider or narrower) would shift
// the rest of its line off the grid the backgrounds are drawn on.
func pinToGrid(svg []byte, cell float64) ([]byte, error) {
	var bad error
	out := textRe.ReplaceAllFunc(svg, func(m []byte) []byte {
		sub := textRe.FindSubmatch(m)
		x0, err := strconv.ParseFloat(string(sub[1]), 64)
		if err != nil {
			bad = fmt.Errorf("text x %q: %w", sub[1], err)
			return m
		}
		col := 0
		body := tspanRe.ReplaceAllFunc(sub[3], func(t []byte) []byte {
			ts := tspanRe.FindSubmatch(t)
			if len(ts[2]) == 0 {
				return t
			}
			var xs []string
			for _, r := range html.UnescapeString(string(ts[2])) {
				xs = append(xs, strconv.FormatFloat(x0+float64(col)*cell, 'f', 2, 64))
				col += max(1, ansi.StringWidth(string(r)))
			}
			attrs := dxRe.ReplaceAllString(string(ts[1]), "")
			return []byte(`<tspan x="` + strings.Join(xs, " ") + `"` + attrs + `>` + string(ts[2]) + `</tspan>`)
		})
		return []byte(`<text x="` + string(sub[1]) + `px"` + string(sub[2]) + `>` + string(body) + `</text>`)
	})
	return out, bad
}
