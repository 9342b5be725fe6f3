package testinfra

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Debian's ClickHouse is 18.16, users run current releases, and no Docker
// engine runs here to start one. chDB (PyPI) embeds a current ClickHouse
// engine in a Python module, so tests can run the same DDL and SQL on both:
// CurrentClickHouse runs statements in an in-process chDB session, with its
// own data directory, that lives for one Run. It is the engine only — no
// native protocol, so clickhouse-go's inserts are not exercised by it.
//
// deploy/local/servers.sh install clickhouse installs chDB into a
// virtualenv and writes its Python to FP_CHDB_PYTHON in servers.env.

//go:embed chdb_run.py
var chdbScript []byte

// CurrentCH is a current ClickHouse engine (chDB).
type CurrentCH struct {
	python, script string
}

// CurrentClickHouse returns the current ClickHouse engine from
// FP_CHDB_PYTHON; without it the test is skipped (failed under
// FP_REQUIRE_SERVERS=1).
func CurrentClickHouse(t testing.TB) *CurrentCH {
	t.Helper()
	py := os.Getenv("FP_CHDB_PYTHON")
	if py == "" {
		absent(t, "FP_CHDB_PYTHON is not set: run deploy/local/servers.sh install clickhouse (installs chDB, a current ClickHouse engine) and export its servers.env")
	}
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("FP_CHDB_PYTHON=%s: %v (deploy/local/servers.sh install clickhouse)", py, err)
	}
	script := filepath.Join(t.TempDir(), "chdb_run.py") // not chdb.py: it would shadow the module
	if err := os.WriteFile(script, chdbScript, 0o644); err != nil {
		t.Fatal(err)
	}
	return &CurrentCH{python: py, script: script}
}

// Run executes the statements in order in one fresh session and returns
// each one's output as TabSeparated text. A statement that fails fails
// the test with the engine's message and the statement.
func (c *CurrentCH) Run(t testing.TB, statements ...string) []string {
	t.Helper()
	out, _, err := c.run(statements, len(statements))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Query runs the setup statements (each must succeed, or the test fails),
// then each query in the same session, and returns the queries' outputs
// and errors: one failing query does not hide the others' answers.
func (c *CurrentCH) Query(t testing.TB, setup, queries []string) (out []string, errs []error) {
	t.Helper()
	all, msgs, err := c.run(append(append([]string(nil), setup...), queries...), len(setup))
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range msgs[len(setup):] {
		if msg != "" {
			errs = append(errs, fmt.Errorf("current ClickHouse (chDB): %s", msg))
		} else {
			errs = append(errs, nil)
		}
	}
	return all[len(setup):], errs
}

func (c *CurrentCH) run(statements []string, setup int) (results, errs []string, _ error) {
	req, err := json.Marshal(map[string]any{"statements": statements, "setup": setup})
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(c.python, c.script)
	cmd.Stdin = bytes.NewReader(req)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var res struct {
		Results []string `json:"results"`
		Errors  []string `json:"errors"`
		Error   string   `json:"error"`
		Index   int      `json:"index"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return nil, nil, fmt.Errorf("chDB: %v: %s%s", runErr, stderr.String(), stdout.String())
	}
	if res.Error != "" {
		return nil, nil, fmt.Errorf("chDB (current ClickHouse), statement %d:\n%s\n%s", res.Index+1, excerpt(statements[res.Index]), res.Error)
	}
	if runErr != nil || len(res.Results) != len(statements) || len(res.Errors) != len(statements) {
		return nil, nil, fmt.Errorf("chDB: %v: %s", runErr, stderr.String())
	}
	return res.Results, res.Errors, nil
}

func excerpt(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "…"
	}
	return strings.TrimSpace(s)
}

// TSV splits TabSeparated output into rows of unescaped fields.
func TSV(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" && len(rows) == 0 && out == "" {
			break
		}
		fields := strings.Split(line, "\t")
		for i, f := range fields {
			fields[i] = unescapeTSV(f)
		}
		rows = append(rows, fields)
	}
	return rows
}

func unescapeTSV(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case '0':
			b.WriteByte(0)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		default: // \\, \', and anything else stands for itself
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
