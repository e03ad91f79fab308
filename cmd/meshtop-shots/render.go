package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	resvg "github.com/kanrichan/resvg-go"
)

const defaultFreeze = "github.com/charmbracelet/freeze@v0.2.2"

// Look of the pictures: a 22 px font at scale 1 gives sharp text at a sane
// file size (freeze's automatic size renders at 4×: 4,000 px wide, megabytes
// per picture). The line height is JetBrains Mono's own (ascent + descent =
// 1.32 em), so the block elements of the sparklines tile without
// overlapping the next line.
const (
	fontSize   = 22.0
	lineHeight = 1.32
	padY, padX = 24.0, 28.0
	windowBar  = 15.0 // freeze adds this much to the top padding with --window
	// cellRatio is freeze's font-height-to-cell-width ratio: it places
	// background colours at column × fontSize/1.68, so the text is placed on
	// the same grid.
	cellRatio = 1.68
)

var (
	imageW = math.Ceil(width*fontSize/cellRatio + 2*padX)
	imageH = math.Ceil(height*fontSize*lineHeight + 2*padY + windowBar + 0.3*fontSize)
)

// freezeArgs fix every look-and-feel option, so a user's freeze
// configuration never changes the pictures.
func freezeArgs() []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	return []string{
		"--config", "base",
		"--language", "ansi",
		"--theme", "charm",
		"--background", "#0d1117",
		"--window",
		"--border.radius", "8",
		"--border.width", "1",
		"--border.color", "#30363d",
		"--padding", f(padY) + "," + f(padX),
		"--margin", "0",
		"--shadow.blur", "0",
		"--font.size", f(fontSize),
		"--line-height", f(lineHeight),
		"--width", f(imageW),
		"--height", f(imageH),
	}
}

// fallbackFonts draw what JetBrains Mono lacks: the braille dots of the
// detail charts (ntcharts) and ⟳. Debian package fonts-dejavu-core.
var fallbackFonts = []string{
	"/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
	"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
}

// renderer turns an ANSI frame into a PNG in two steps:
//
//  1. freeze (built once from module@version) lays the frame out as SVG:
//     colours, backgrounds, the window.
//  2. The SVG's text is pinned to the terminal grid (every character gets
//     its column's x), then rasterised by resvg (WebAssembly, via
//     resvg-go) with JetBrains Mono — freeze's font, from its module — plus
//     DejaVu for the glyphs JetBrains Mono lacks.
//
// freeze would rasterise by itself, with rsvg-convert when that is on PATH
// (machine fonts: not reproducible) or its embedded resvg, which loads only
// JetBrains Mono and draws the charts' braille as empty boxes. Pinning
// every character to its column keeps a fallback glyph's different advance
// from shifting the rest of its line.
type renderer struct {
	bin   string
	work  string
	fonts [][]byte
}

func newRenderer(ctx context.Context, module, work string) (*renderer, error) {
	gobin := filepath.Join(work, "bin")
	cmd := exec.CommandContext(ctx, goTool(), "install", module)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("building %s: %w\n%s", module, err, out.String())
	}
	name := module
	if i := strings.LastIndex(name, "@"); i >= 0 {
		name = name[:i]
	}
	r := &renderer{bin: filepath.Join(gobin, filepath.Base(name)), work: work}

	// JetBrains Mono as freeze ships it.
	cmd = exec.CommandContext(ctx, goTool(), "mod", "download", "-json", module)
	cmd.Dir = work // outside any module
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("locating %s: %w", module, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(b, &mod); err != nil || mod.Dir == "" {
		return nil, fmt.Errorf("locating %s: no module directory in %q", module, b)
	}
	for _, f := range append([]string{filepath.Join(mod.Dir, "font", "JetBrainsMono-Regular.ttf")}, fallbackFonts...) {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) && strings.Contains(f, "dejavu") {
			return nil, fmt.Errorf("font %s is missing: install it with `apt-get install fonts-dejavu-core`", f)
		}
		if err != nil {
			return nil, fmt.Errorf("reading font: %w", err)
		}
		r.fonts = append(r.fonts, data)
	}
	return r, nil
}

// goTool is the go command on PATH.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

func (r *renderer) render(ctx context.Context, name, frame, png string) error {
	in := filepath.Join(r.work, name+".ansi")
	svgPath := filepath.Join(r.work, name+".svg")
	if err := os.WriteFile(in, []byte(frame), 0o644); err != nil {
		return fmt.Errorf("writing the frame: %w", err)
	}
	args := append([]string{in, "--output", svgPath}, freezeArgs()...)
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Dir = r.work
	// No user configuration, no terminal, stdin not a pipe.
	cmd.Env = []string{"PATH=", "HOME=" + r.work, "XDG_CONFIG_HOME=" + r.work, "TERM=dumb"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("freeze: %w\n%s", err, out.String())
	}
	svg, err := os.ReadFile(svgPath)
	if err != nil {
		return fmt.Errorf("freeze wrote no SVG:\n%s", out.String())
	}
	svg, err = pinToGrid(svg, fontSize/cellRatio)
	if err != nil {
		return err
	}
	img, err := r.rasterise(ctx, svg)
	if err != nil {
		return fmt.Errorf("rasterising: %w", err)
	}
	return os.WriteFile(png, img, 0o644)
}

func (r *renderer) rasterise(ctx context.Context, svg []byte) ([]byte, error) {
	wk, err := resvg.NewDefaultWorker(ctx)
	if err != nil {
		return nil, err
	}
	defer wk.Close()
	db, err := wk.NewFontDBDefault()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	for _, f := range r.fonts {
		if err := db.LoadFontData(f); err != nil {
			return nil, fmt.Errorf("loading a font: %w", err)
		}
	}
	pm, err := wk.NewPixmap(uint32(imageW), uint32(imageH))
	if err != nil {
		return nil, err
	}
	defer pm.Close()
	tree, err := wk.NewTreeFromData(svg, &resvg.Options{
		Dpi:                192,
		ShapeRenderingMode: resvg.ShapeRenderingModeGeometricPrecision,
		TextRenderingMode:  resvg.TextRenderingModeOptimizeLegibility,
		ImageRenderingMode: resvg.ImageRenderingModeOptimizeQuality,
		DefaultSizeWidth:   float32(imageW),
		DefaultSizeHeight:  float32(imageH),
	})
	if err != nil {
		return nil, err
	}
	defer tree.Close()
	if err := tree.ConvertText(db); err != nil {
		return nil, err
	}
	if err := tree.Render(resvg.TransformIdentity(), pm); err != nil {
		return nil, err
	}
	return pm.EncodePNG()
}
