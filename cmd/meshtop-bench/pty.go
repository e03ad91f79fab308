package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/creack/pty"
)

// ptyRun is what one program cost while it ran under a pseudo-terminal.
type ptyRun struct {
	FirstFrame time.Duration // start → first output containing the marker; -1 if never
	CPUSeconds float64       // utime+stime over the whole window
	IdleCPUPct float64       // CPU % of one core from warm to the end of the window
	PeakRSSMB  float64       // VmHWM
	Bytes      int64         // written to the terminal
	Window     time.Duration
	Tail       string // the last output, for error messages
}

// terminalReplies answers the queries terminal programs send at start-up
// (background/foreground colour, device attributes, cursor position), as
// a real terminal emulator would; without them a program may wait for a
// reply until its own timeout.
var terminalReplies = []struct{ query, reply string }{
	{"\x1b]11;?", "\x1b]11;rgb:0000/0000/0000\x1b\\"},
	{"\x1b]10;?", "\x1b]10;rgb:ffff/ffff/ffff\x1b\\"},
	{"\x1b[6n", "\x1b[1;1R"},
	{"\x1b[c", "\x1b[?62;22c"},
	{"\x1b[0c", "\x1b[?62;22c"},
}

// runUnderPTY starts argv in a 120×40 pseudo-terminal, drains and counts
// its output, and after window samples its CPU time and peak RSS from /proc
// and asks it to quit (q, then SIGTERM, then SIGKILL). warm is when the idle
// CPU measurement starts.
func runUnderPTY(ctx context.Context, argv, env []string, marker string, window, warm time.Duration) (ptyRun, error) {
	res := ptyRun{FirstFrame: -1, Window: window}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		return res, fmt.Errorf("starting %s under a pseudo-terminal: %w", argv[0], err)
	}
	defer f.Close()
	pid := cmd.Process.Pid

	type chunk struct {
		n    int
		at   time.Time
		data []byte
	}
	chunks := make(chan chunk, 256)
	go func() {
		defer close(chunks)
		buf := make([]byte, 64*1024)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				chunks <- chunk{n: n, at: time.Now(), data: append([]byte(nil), buf[:n]...)}
			}
			if err != nil {
				return
			}
		}
	}()

	var tail []byte
	var warmCPU float64
	warmAt := time.Time{}
	warmTimer := time.NewTimer(warm)
	defer warmTimer.Stop()
	end := time.NewTimer(window)
	defer end.Stop()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	const keep = 8192

loop:
	for {
		select {
		case c, ok := <-chunks:
			if !ok {
				chunks = nil
				continue
			}
			res.Bytes += int64(c.n)
			tail = append(tail, c.data...)
			for _, q := range terminalReplies {
				if bytes.Contains(tail[max(0, len(tail)-c.n-len(q.query)):], []byte(q.query)) {
					_, _ = f.Write([]byte(q.reply))
				}
			}
			if res.FirstFrame < 0 && bytes.Contains(tail, []byte(marker)) {
				res.FirstFrame = c.at.Sub(start)
			}
			if len(tail) > keep {
				tail = tail[len(tail)-keep:]
			}
		case <-warmTimer.C:
			warmAt = time.Now()
			warmCPU, _ = cpuSeconds(pid)
		case err := <-exited:
			res.Tail = printable(tail)
			return res, fmt.Errorf("%s exited before the end of the window: %v; last output: %s", argv[0], err, res.Tail)
		case <-end.C:
			break loop
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return res, ctx.Err()
		}
	}
	endAt := time.Now()
	cpu, err := cpuSeconds(pid)
	if err != nil {
		return res, err
	}
	res.CPUSeconds = cpu
	if !warmAt.IsZero() {
		res.IdleCPUPct = 100 * (cpu - warmCPU) / endAt.Sub(warmAt).Seconds()
	}
	res.PeakRSSMB, err = peakRSSMB(pid)
	if err != nil {
		return res, err
	}
	res.Tail = printable(tail)

	// Quit as a user would, then insist.
	_, _ = f.Write([]byte("q"))
	select {
	case <-exited:
	case <-time.After(3 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	return res, nil
}

// cpuSeconds is the CPU time pid has used. It sums the nanosecond counters
// of every thread (/proc/PID/task/TID/schedstat, first field): utime+stime
// in /proc/PID/stat count 10 ms ticks, too coarse for an idle dashboard
// (0.1% of a core over 15 s is 1.5 ticks). A thread that has exited is
// missing from the tasks but still counted in /proc/PID/stat, so when the
// tick count is clearly ahead that is used instead.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading CPU time: %w", err)
	}
	ticks, err := parseStatCPU(string(b))
	if err != nil {
		return 0, err
	}
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return ticks, nil
	}
	var ns float64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			return ticks, nil // a thread exited while we read
		}
		v, err := parseSchedstat(string(b))
		if err != nil {
			return ticks, nil
		}
		ns += v
	}
	// Tick accounting samples, so the two differ a little even with every
	// thread present; only a clear excess means an exited thread.
	if sec := ns / 1e9; ticks-sec <= math.Max(0.05, 0.1*ticks) {
		return sec, nil
	}
	return ticks, nil
}

// parseSchedstat reads the time on CPU in nanoseconds, the first of the
// three fields of a /proc/.../schedstat line.
func parseSchedstat(line string) (float64, error) {
	f := strings.Fields(line)
	if len(f) < 1 {
		return 0, errors.New("unexpected schedstat format")
	}
	return strconv.ParseFloat(f[0], 64)
}

// parseStatCPU extracts utime+stime (fields 14 and 15) from a /proc/PID/stat
// line; the command name in parentheses may contain spaces.
func parseStatCPU(stat string) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc/PID/stat format")
	}
	f := strings.Fields(stat[i+1:])
	// After ")": state(3) ppid(4) … utime is field 14 → index 11 here.
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc/PID/stat format")
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc/PID/stat format")
	}
	return (ut + st) / 100, nil
}

// peakRSSMB reads VmHWM (peak resident set) of pid in MiB.
func peakRSSMB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading peak RSS: %w", err)
	}
	return parseVmHWM(string(b))
}

func parseVmHWM(status string) (float64, error) {
	for _, line := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseFloat(f[0], 64)
				if err == nil {
					return kb / 1024, nil
				}
			}
		}
	}
	return 0, errors.New("no VmHWM in /proc/PID/status")
}

// printable keeps the last few hundred printable characters of terminal
// output, for error messages.
func printable(b []byte) string {
	var s strings.Builder
	for _, r := range string(b) {
		if r >= 32 && r != 127 {
			s.WriteRune(r)
		} else if r == '\n' {
			s.WriteRune(' ')
		}
	}
	out := s.String()
	if len(out) > 400 {
		out = out[len(out)-400:]
	}
	return out
}
