package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

const (
	width  = 120
	height = 40
	// settle is how long a frame must stay unchanged after the awaited texts
	// appeared before it is taken: reads started by the same key may still
	// be landing.
	settle = 500 * time.Millisecond
	// waitLimit bounds each wait for a text on screen.
	waitLimit = 2 * time.Minute
)

// recorder wraps the dashboard model and remembers the last frame it drew.
type recorder struct {
	tea.Model
	frames *frames
}

type frames struct {
	mu      sync.Mutex
	last    string
	prev    string // the frame before last, to say what keeps changing
	changes int
	changed time.Time
}

func (r recorder) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	m, cmd := r.Model.Update(msg)
	r.Model = m
	return r, cmd
}

func (r recorder) View() string {
	v := r.Model.View()
	r.frames.mu.Lock()
	if v != r.frames.last {
		r.frames.prev, r.frames.last, r.frames.changed = r.frames.last, v, time.Now()
		r.frames.changes++
	}
	r.frames.mu.Unlock()
	return v
}

// session is the real dashboard model running in a Bubble Tea program with
// no terminal: no input reader, no renderer output, a fixed window size.
// Keys and messages are sent to it as a terminal would.
type session struct {
	p      *tea.Program
	frames *frames
	done   chan struct{}
	final  tea.Model
	err    error
}

func startSession(ctx context.Context, m tea.Model) *session {
	s := &session{frames: &frames{}, done: make(chan struct{})}
	s.p = tea.NewProgram(recorder{Model: m, frames: s.frames},
		tea.WithContext(ctx), tea.WithInput(nil), tea.WithoutRenderer(), tea.WithoutSignalHandler())
	go func() {
		defer close(s.done)
		s.final, s.err = s.p.Run()
	}()
	s.p.Send(tea.WindowSizeMsg{Width: width, Height: height})
	return s
}

// wait returns once the current frame shows every text and has stopped
// changing.
func (s *session) wait(ctx context.Context, texts ...string) error {
	deadline := time.Now().Add(waitLimit)
	for {
		s.frames.mu.Lock()
		last, prev, changed, changes := s.frames.last, s.frames.prev, s.frames.changed, s.frames.changes
		s.frames.mu.Unlock()
		// Texts are looked for in what a reader sees: styles may split a
		// word (an underlined tab is styled rune by rune).
		plain := ansi.Strip(last)
		all := true
		for _, t := range texts {
			if !strings.Contains(plain, t) {
				all = false
				break
			}
		}
		if all && time.Since(changed) >= settle {
			return nil
		}
		if time.Now().After(deadline) {
			if all {
				return fmt.Errorf("waited %s for %q to stop changing (%d frames; the last changed %s ago); the lines that changed last:\n%s",
					waitLimit, texts, changes, time.Since(changed).Round(time.Millisecond), lineDiff(prev, last))
			}
			return fmt.Errorf("waited %s for %q; the last frame was:\n%s", waitLimit, texts, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return errors.New("the dashboard quit early")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *session) keys(keys ...string) {
	for _, k := range keys {
		s.p.Send(keyMsg(k))
	}
}

// quit presses ctrl+c and returns the last frame the model draws.
func (s *session) quit() (string, error) {
	s.p.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	select {
	case <-s.done:
	case <-time.After(waitLimit):
		s.p.Kill()
		<-s.done
		return "", errors.New("the dashboard did not quit")
	}
	if s.err != nil {
		return "", fmt.Errorf("running the dashboard: %w", s.err)
	}
	r, ok := s.final.(recorder)
	if !ok {
		return "", fmt.Errorf("unexpected final model %T", s.final)
	}
	return r.Model.View(), nil
}

func keyMsg(s string) tea.KeyMsg {
	switch s {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

// lineDiff lists the lines of b that differ from a's at the same position.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i, l := range bl {
		if i >= len(al) || al[i] != l {
			out = append(out, fmt.Sprintf("%3d: %q", i+1, l))
			if i < len(al) {
				out = append(out, fmt.Sprintf("was: %q", al[i]))
			}
		}
	}
	if len(al) > len(bl) {
		out = append(out, fmt.Sprintf("(%d lines fewer)", len(al)-len(bl)))
	}
	return strings.Join(out, "\n")
}
