// Command demo plays a simulated shop through a running Firstparty stack
// (make up) and shows the pipeline at work: per-stage rates and consumer
// lag from each service's /metrics, profiles created and merged, segment
// triggers as they arrive on cdp.segments.membership, and at the end the
// ClickHouse queries a data team would run, with their answers. It exits
// non-zero when the pipeline did not do its job (nothing accepted, no
// trigger soon after the start, nothing in ClickHouse).
//
//	make demo                      # make up, then this for 60 s
//	FP_DEMO_SECONDS=120 make demo  # long enough for the 1-minute audiences
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

func main() {
	wd, _ := os.Getwd()
	file := map[string]string{}
	if p := findEnvFile(wd); p != "" {
		f, err := os.Open(p)
		if err == nil {
			file, err = parseEnvFile(f)
			f.Close()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "demo: reading %s: %v\n", p, err)
			os.Exit(2)
		}
	}
	cfg, err := parseConfig(os.Args[1:], lookup(os.LookupEnv, file))
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fd := int(os.Stdout.Fd())
	size := func() Layout {
		w, h, err := term.GetSize(fd)
		if err != nil {
			return Layout{Width: 80, Height: 24}
		}
		return Layout{Width: w, Height: h}
	}
	if err := run(ctx, cfg, os.Stdout, term.IsTerminal(fd) && os.Getenv("TERM") != "dumb", size); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo FAILED:\n%v\n", err)
		os.Exit(1)
	}
}
