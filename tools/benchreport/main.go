// Command benchreport turns one `make bench` run into one table, a JSON
// document and a PNG chart.
//
// It reads what the stage benchmarks left in -dir (collector.json from
// deploy/bench/collector.sh, stitcher.json, loader.json, pipeline.json),
// prints the table to stdout (each stage's throughput and the end-to-end
// latencies per offered rate, then each stage alone beside its server's
// own tool measured in the same run, and peak memory), writes the report
// as -json and the chart as -png, and, given -prev (an earlier -json),
// how the headline figures moved since then.
//
//	benchreport -dir .local/bench -json .local/bench/bench.json -png .local/bench/bench.png -prev .local/bench/bench.prev.json
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	dir := flag.String("dir", ".local/bench", "directory holding collector.json, stitcher.json, loader.json, pipeline.json")
	jsonOut := flag.String("json", "", "write the report as JSON here")
	pngOut := flag.String("png", "", "write the chart as PNG here")
	prevFile := flag.String("prev", "", "an earlier report (-json) to compare with; absent is fine")
	commit := flag.String("commit", "", "commit the run measured")
	host := flag.String("host", "", "what the run ran on")
	took := flag.Duration("took", 0, "how long the whole run took")
	flag.Parse()
	if err := run(*dir, *jsonOut, *pngOut, *prevFile, *commit, *host, *took); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(dir, jsonOut, pngOut, prevFile, commit, host string, took time.Duration) error {
	in, err := LoadInputs(dir)
	if err != nil {
		return err
	}
	r := Build(in)
	r.At, r.Commit, r.Host, r.TookSeconds = time.Now().UTC(), commit, host, took.Seconds()
	prev, err := readReport(prevFile)
	if err != nil {
		return err
	}
	Render(os.Stdout, r, prev)
	if jsonOut != "" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
		fmt.Printf("\nJSON: %s\n", jsonOut)
	}
	if pngOut != "" {
		var buf bytes.Buffer
		if err := Chart(&buf, r); err != nil {
			return fmt.Errorf("drawing the chart: %w", err)
		}
		if err := os.WriteFile(pngOut, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("writing the chart: %w", err)
		}
		fmt.Printf("chart: %s\n", pngOut)
	}
	return nil
}

// readReport reads an earlier report; no file is no report.
func readReport(path string) (*Report, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("reading the previous report %s: %w", path, err)
	}
	return &r, nil
}
