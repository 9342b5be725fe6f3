package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
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

// latestShown is how many of the newest triggers the view lists.
const latestShown = 8

// render draws the frame for a terminal, one line per row, no escapes.
func render(f Frame) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Firstparty demo: a simulated shop → collector → validator → stitcher → segmenter → loader   %s / %s  %s\n",
		secs(f.Elapsed), secs(f.Duration), f.Phase)
	shop := f.Sent.Shop
	fmt.Fprintf(&b, "shop       %s events accepted (%s/s), %s failed · %s sign-ups · %s logins on a 2nd device · %s orders · %s refunds · %s devices gone quiet\n",
		num(float64(f.Sent.Accepted)), num(f.SendRate), num(float64(f.Sent.Failed)), num(float64(shop.SignUps)), num(float64(shop.Logins)),
		num(float64(shop.Orders)), num(float64(shop.Refunds)), num(float64(shop.Quiet)))
	if f.Sent.FirstErr != "" {
		fmt.Fprintf(&b, "           first error: %s\n", clip(f.Sent.FirstErr, 100))
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "%-11s %10s %12s %8s\n", "stage", "msgs/s", "since start", "lag")
	for _, s := range f.Stages {
		lag := "–"
		if s.HasLag {
			lag = num(s.Lag)
		}
		if s.Err != "" {
			fmt.Fprintf(&b, "%-11s %s\n", s.Name, clip("metrics unavailable: "+s.Err, 90))
			continue
		}
		fmt.Fprintf(&b, "%-11s %10s %12s %8s\n", s.Name, num(s.Rate), num(s.Total), lag)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "profiles   %s created, %s merged (one person, two devices)\n", num(f.NewProfiles), num(f.Merges))
	t := f.Triggers
	first := "none yet"
	if t.First > 0 {
		first = "first after " + secs1(t.First)
	}
	fmt.Fprintf(&b, "triggers   %s segment enters/exits (%s; %s by timers: absence, inactivity)\n", num(float64(t.Total)), first, num(float64(t.Timers)))
	for _, seg := range sortedSegments(t.BySegment) {
		c := t.BySegment[seg]
		fmt.Fprintf(&b, "  %-26s %7s enter %6s exit\n", seg, num(float64(c.Enter)), num(float64(c.Exit)))
	}
	if len(t.Recent) > 0 {
		b.WriteString("latest\n")
	}
	recent := t.Recent
	if len(recent) > latestShown {
		recent = recent[len(recent)-latestShown:]
	}
	for i := len(recent) - 1; i >= 0; i-- {
		tr := recent[i]
		fmt.Fprintf(&b, "  %7s  %-5s %-26s %s  %s\n", "+"+secs1(tr.After), transition(tr), tr.Segment, tr.Profile, cause(tr))
	}
	if t.Err != nil {
		fmt.Fprintf(&b, "  (membership topic: %s)\n", clip(t.Err.Error(), 90))
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
		return "(timer fell due)"
	}
	return "(" + strconv.FormatInt(t.Latency.Milliseconds(), 10) + " ms after the event)"
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

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
