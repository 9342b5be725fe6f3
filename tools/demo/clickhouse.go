package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Query is one question a data team asks of the demo's events.
type Query struct {
	Title string
	SQL   string
}

// Result is a query's answer: a header and rows of text cells.
type Result struct {
	Columns []string
	Rows    [][]string
}

// scope is the WHERE every query starts from: the demo workspace's events
// received since the demo started. Dates are compared with dates and
// DateTimes with DateTimes (ClickHouse 18.16 compares a DateTime with a
// Date wrongly; see services/loader/COOKBOOK.md); the toDate(timestamp)
// term is what the primary key indexes.
func scope(workspace string, start time.Time) string {
	return fmt.Sprintf("workspace_id = %s AND toDate(timestamp) >= toDate(%d) - 1 AND received_at >= toDateTime(%d)",
		quote(workspace), start.Unix(), start.Unix())
}

// queries are the demo's closing questions, after the cookbook
// (services/loader/COOKBOOK.md), limited to this run's events. Each runs
// on ClickHouse 18.16 and on current releases: no JSONExtract (use
// visitParamExtract*), no alias that shadows a column, FINAL where exact
// counts matter.
func queries(workspace string, start time.Time) []Query {
	where := scope(workspace, start)
	memberships := fmt.Sprintf("workspace_id = %s AND toDate(occurred_at) >= toDate(%d) - 1 AND evaluated_at >= toDateTime(%d)",
		quote(workspace), start.Unix(), start.Unix())
	return []Query{
		{"Events by type", `SELECT
    if(event = '', type, event) AS what,
    count() AS events,
    uniqExact(anonymous_id) AS devices
FROM events FINAL
WHERE ` + where + `
GROUP BY what
ORDER BY events DESC, what`},
		{"Funnel: viewed → added to cart → bought within an hour, per person", `SELECT
    countIf(level >= 1) AS viewed,
    countIf(level >= 2) AS added_to_cart,
    countIf(level >= 3) AS purchased
FROM
(
    SELECT
        current_profile_id,
        windowFunnel(3600)(timestamp, event = 'Product Viewed', event = 'Product Added', event = 'Order Completed') AS level
    FROM events_current
    WHERE ` + where + `
      AND event IN ('Product Viewed', 'Product Added', 'Order Completed')
    GROUP BY current_profile_id
)`},
		{"First-touch attribution by utm_source", `SELECT
    if(first_source = '', '(none)', first_source) AS utm_source,
    count() AS people,
    sum(orders) AS orders,
    round(sum(revenue), 2) AS revenue
FROM
(
    SELECT
        current_profile_id,
        argMinIf(context_campaign_source, (timestamp, timestamp_ms), context_campaign_source != '') AS first_source,
        countIf(event = 'Order Completed') AS orders,
        sumIf(visitParamExtractFloat(properties, 'revenue'), event = 'Order Completed') AS revenue
    FROM events_current
    WHERE ` + where + `
    GROUP BY current_profile_id
)
GROUP BY utm_source
ORDER BY revenue DESC, people DESC, utm_source`},
		{"Revenue net of refunds", `SELECT
    countIf(event = 'Order Completed') AS orders,
    round(sumIf(visitParamExtractFloat(properties, 'revenue'), event = 'Order Completed'), 2) AS gross,
    countIf(event = 'Order Refunded') AS refunds,
    round(sumIf(visitParamExtractFloat(properties, 'revenue'), event = 'Order Refunded'), 2) AS refunded,
    round(gross - refunded, 2) AS net
FROM events FINAL
WHERE ` + where + `
  AND event IN ('Order Completed', 'Order Refunded')`},
		{"Devices, profiles and people: what identity resolution merged", `SELECT
    uniqExact(anonymous_id) AS devices,
    uniqExact(profile_id) AS profiles_at_the_time,
    uniqExact(current_profile_id) AS people_now,
    uniqExactIf(user_id, user_id != '') AS signed_up
FROM events_current
WHERE ` + where},
		{"People per segment (entered during the demo, still in)", `SELECT
    segment_id,
    countIf(last = 'enter') AS members_now,
    sum(enters) AS enters,
    sum(exits) AS exits
FROM
(
    SELECT
        segment_id,
        profile_id,
        argMax(transition, (evaluated_at, evaluated_at_ms)) AS last,
        countIf(transition = 'enter') AS enters,
        countIf(transition = 'exit') AS exits
    FROM segment_memberships FINAL
    WHERE ` + memberships + `
    GROUP BY segment_id, profile_id
)
GROUP BY segment_id
ORDER BY members_now DESC, segment_id`},
	}
}

// countQuery counts the demo's events ClickHouse holds.
func countQuery(workspace string, start time.Time) string {
	return "SELECT count() AS events FROM events FINAL WHERE " + scope(workspace, start)
}

func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// clickhouse runs queries over the HTTP interface.
type clickhouse struct {
	base, database string
	client         *http.Client
}

func (c *clickhouse) query(ctx context.Context, sql string) (Result, error) {
	u := strings.TrimSuffix(c.base, "/") + "/?" + url.Values{"database": {c.database}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(sql+"\nFORMAT TabSeparatedWithNames"))
	if err != nil {
		return Result{}, fmt.Errorf("querying clickhouse: %w", err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("querying clickhouse: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return Result{}, fmt.Errorf("reading clickhouse answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return Result{}, fmt.Errorf("clickhouse answered %s: %s", resp.Status, clip(strings.TrimSpace(string(body)), 300))
	}
	return parseTSV(string(body))
}

// parseTSV reads ClickHouse's TabSeparatedWithNames: a header line, then
// one line a row, with \t, \n and \\ escaped inside cells.
func parseTSV(s string) (Result, error) {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return Result{}, errors.New("parsing clickhouse answer: no header line")
	}
	lines := strings.Split(s, "\n")
	r := Result{Columns: splitTSV(lines[0])}
	for i, l := range lines[1:] {
		cells := splitTSV(l)
		if len(cells) != len(r.Columns) {
			return Result{}, fmt.Errorf("parsing clickhouse answer: row %d has %d cells, header %d", i+1, len(cells), len(r.Columns))
		}
		r.Rows = append(r.Rows, cells)
	}
	return r, nil
}

var tsvUnescape = strings.NewReplacer(`\t`, "\t", `\n`, "\n", `\\`, `\`, `\'`, `'`, `\r`, "\r", `\0`, "\x00", `\b`, "\b", `\f`, "\f")

func splitTSV(line string) []string {
	cells := strings.Split(line, "\t")
	for i, c := range cells {
		cells[i] = tsvUnescape.Replace(c)
	}
	return cells
}

// formatTable draws r as an aligned text table: numbers right-aligned,
// text left-aligned, a rule under the header.
func formatTable(r Result) string {
	widths := make([]int, len(r.Columns))
	numeric := make([]bool, len(r.Columns))
	for i, c := range r.Columns {
		widths[i] = utf8.RuneCountInString(c)
		numeric[i] = len(r.Rows) > 0
	}
	for _, row := range r.Rows {
		for i, cell := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
			if !isNumber(cell) {
				numeric[i] = false
			}
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for i, c := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if numeric[i] {
				b.WriteString(pad + c)
			} else if i < len(cells)-1 {
				b.WriteString(c + pad)
			} else {
				b.WriteString(c)
			}
		}
		b.WriteString("\n")
	}
	line(r.Columns)
	rule := make([]string, len(r.Columns))
	for i, w := range widths {
		rule[i] = strings.Repeat("─", w)
	}
	line(rule)
	for _, row := range r.Rows {
		line(row)
	}
	if len(r.Rows) == 0 {
		b.WriteString("(no rows)\n")
	}
	return b.String()
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	dot := false
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
		case c == '-' && i == 0 && len(s) > 1:
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return true
}
