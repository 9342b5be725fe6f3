package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Frame is everything one refresh of the view shows.
type Frame struct {
	Elapsed, Duration time.Duration
	Phase             string // sending, draining, done
	Sent              Sent
	SendRate          float64
	Stages            []StageView
	NewProfiles       float64
	Merges            float64
	Triggers          TriggerSummary
}

// latestShown is how many of the newest triggers the view lists, room
// permitting.
const latestShown = 8

// Layout is the terminal's size; zero means unbounded (not a terminal).
// A frame must fit it: a wrapped or scrolled line would break the
// in-place redraw, so lines are clipped to the width and the list of
// latest triggers shortened to the height.
type Layout struct{ Width, Height int }

// render draws the frame, one line per row, no escapes.
func render(f Frame, l Layout) string {
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	add("Firstparty demo  %s / %s  %s", secs(f.Elapsed), secs(f.Duration), f.Phase)
	shop := f.Sent.Shop
	add("shop       %s events accepted (%s/s), %s failed; %s devices gone quiet",
		num(float64(f.Sent.Accepted)), num(f.SendRate), num(float64(f.Sent.Failed)), num(float64(shop.Quiet)))
	add("           %s sign-ups · %s logins on a 2nd device · %s orders · %s refunds",
		num(float64(shop.SignUps)), num(float64(shop.Logins)), num(float64(shop.Orders)), num(float64(shop.Refunds)))
	if f.Sent.FirstErr != "" {
		add("           first error: %s", f.Sent.FirstErr)
	}
	add("")
	add("%-11s %10s %12s %8s", "stage", "msgs/s", "since start", "lag")
	for _, s := range f.Stages {
		if s.Err != "" {
			add("%-11s metrics unavailable: %s", s.Name, s.Err)
			continue
		}
		lag := "–"
		if s.HasLag {
			lag = num(s.Lag)
		}
		add("%-11s %10s %12s %8s", s.Name, num(s.Rate), num(s.Total), lag)
	}
	add("")
	add("profiles   %s created, %s merged (one person, two devices)", num(f.NewProfiles), num(f.Merges))
	t := f.Triggers
	first := "none yet"
	if t.First > 0 {
		first = "first after " + secs1(t.First)
	}
	add("triggers   %s enters/exits, %s; %s by timers (absence, inactivity)", num(float64(t.Total)), first, num(float64(t.Timers)))
	for _, seg := range sortedSegments(t.BySegment) {
		c := t.BySegment[seg]
		add("  %-26s %7s enter %6s exit", seg, num(float64(c.Enter)), num(float64(c.Exit)))
	}
	if t.Timers == 0 && t.Total > 0 && f.Phase == "done" {
		add("  (the 1-minute audiences fire after a minute without events: FP_DEMO_SECONDS=120 make demo)")
	}
	if t.Err != nil {
		add("  (membership topic: %s)", t.Err)
	}
	shown := min(latestShown, len(t.Recent))
	if l.Height > 0 {
		// One row stays free for the cursor after the last line.
		shown = max(0, min(shown, l.Height-len(lines)-2))
	}
	if shown > 0 {
		add("latest     (since start, segment, profile, delay from its event or timer)")
	}
	for i := len(t.Recent) - 1; i >= len(t.Recent)-shown; i-- {
		tr := t.Recent[i]
		add("  %7s  %-5s %-26s %s  %s", "+"+secs1(tr.After), transition(tr), tr.Segment, tr.Profile, cause(tr))
	}
	if l.Height > 0 && len(lines) > l.Height-1 {
		lines = lines[:max(l.Height-1, 0)] // a terminal too short for the whole view shows its top
	}
	var b strings.Builder
	for _, line := range lines {
		if l.Width > 0 {
			line = clipRunes(line, l.Width-1)
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// statusLine is the frame as one line, for logs.
func statusLine(f Frame) string {
	var b strings.Builder
	fmt.Fprintf(&b, "demo %s %s: accepted %s (%s/s)", secs(f.Elapsed), f.Phase, num(float64(f.Sent.Accepted)), num(f.SendRate))
	if f.Sent.Failed > 0 {
		fmt.Fprintf(&b, ", %s failed", num(float64(f.Sent.Failed)))
	}
	for _, s := range f.Stages {
		switch {
		case s.Err != "":
			fmt.Fprintf(&b, " | %s ?", s.Name)
		case s.HasLag:
			fmt.Fprintf(&b, " | %s %s/s lag %s", s.Name, num(s.Rate), num(s.Lag))
		default:
			fmt.Fprintf(&b, " | %s %s/s", s.Name, num(s.Rate))
		}
	}
	fmt.Fprintf(&b, " | profiles %s, merged %s | triggers %s", num(f.NewProfiles), num(f.Merges), num(float64(f.Triggers.Total)))
	if r := f.Triggers.Recent; len(r) > 0 {
		last := r[len(r)-1]
		fmt.Fprintf(&b, ", latest %s %s at +%s", last.Segment, transition(last), secs1(last.After))
	}
	return b.String()
}

// redraw returns what to write so frame replaces the prevLines lines
// written before it: up to the first of them, clear to the end, draw.
func redraw(prevLines int, frame string) string {
	if prevLines == 0 {
		return frame
	}
	return "\x1b[" + strconv.Itoa(prevLines) + "F\x1b[J" + frame
}

func sortedSegments(m map[string]SegmentCount) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := m[out[i]], m[out[j]]
		if a.Enter+a.Exit != b.Enter+b.Exit {
			return a.Enter+a.Exit > b.Enter+b.Exit
		}
		return out[i] < out[j]
	})
	return out
}

func transition(t Trigger) string {
	if t.Enter {
		return "enter"
	}
	return "exit"
}

func cause(t Trigger) string {
	if t.Timer {
		return "timer, " + strconv.FormatInt(t.Latency.Milliseconds(), 10) + " ms after due"
	}
	return strconv.FormatInt(t.Latency.Milliseconds(), 10) + " ms"
}

// num formats a count or rate with thousands separators, rounded.
func num(v float64) string {
	n := int64(v + 0.5)
	if v < 0 {
		n = int64(v - 0.5)
	}
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func secs(d time.Duration) string { return strconv.Itoa(int(d.Round(time.Second)/time.Second)) + "s" }

func secs1(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s" }

// clipRunes cuts s to n characters (runes: the view draws · → ─).
func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(n-1, 0)]) + "…"
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
