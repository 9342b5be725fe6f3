// Package progress shows how far a long run has come where people wait:
// a bar redrawn in place on a terminal (github.com/schollz/progressbar),
// and in a log or CI output, where redrawing makes noise, a plain line
// every few seconds.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Bar is one task's progress toward Total.
type Bar struct {
	mu       sync.Mutex
	w        io.Writer
	title    string
	total    int64
	unit     string
	bar      *progressbar.ProgressBar // nil: plain lines
	every    time.Duration
	last     time.Time
	started  time.Time
	finished bool
}

// New starts a bar for a task of total units (seconds, rows, …) written to
// w: a redrawn bar when w is a terminal, else a line at most every 5 s.
func New(w io.Writer, title string, total int64, unit string) *Bar {
	b := &Bar{w: w, title: title, total: total, unit: unit, every: 5 * time.Second, started: time.Now()}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(title),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetRenderBlankState(true),
		)
	}
	return b
}

// Set moves the bar to done units, with a note of what is happening now
// ("sent 12,000, 3 probes outstanding").
func (b *Bar) Set(done int64, note string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	if b.bar != nil {
		b.bar.Describe(b.title + "  " + note)
		_ = b.bar.Set64(min(done, b.total))
		return
	}
	if now := time.Now(); now.Sub(b.last) >= b.every {
		b.last = now
		fmt.Fprintln(b.w, Line(b.title, done, b.total, b.unit, note))
	}
}

// Done ends the bar with a summary line.
func (b *Bar) Done(summary string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	b.finished = true
	if b.bar != nil {
		_ = b.bar.Finish()
	}
	fmt.Fprintf(b.w, "%s: %s (%s)\n", b.title, summary, time.Since(b.started).Round(100*time.Millisecond))
}

// Line is the plain progress line: "title  12/30 s  40%  note".
func Line(title string, done, total int64, unit, note string) string {
	pct := 0.0
	if total > 0 {
		pct = float64(min(done, total)) / float64(total) * 100
	}
	s := fmt.Sprintf("%s  %d/%d %s  %3.0f%%", title, done, total, unit, pct)
	if note != "" {
		s += "  " + note
	}
	return s
}
