package app

import (
	"context"
	"net"
	"testing"
	"time"
)

type fakeServer struct {
	served   chan net.Listener
	graceful chan struct{}
	block    bool // GracefulStop never returns (a stuck client)
	stopped  chan struct{}
}

func (f *fakeServer) Serve(ln net.Listener) error { f.served <- ln; <-f.stopped; return nil }
func (f *fakeServer) GracefulStop() {
	close(f.graceful)
	if f.block {
		select {}
	}
	close(f.stopped)
}
func (f *fakeServer) Stop() { close(f.stopped) }

// TestServe: Serve stops the server gracefully when its context ends, and
// at once when a graceful stop takes longer than the drain.
func TestServe(t *testing.T) {
	for _, block := range []bool{false, true} {
		f := &fakeServer{served: make(chan net.Listener, 1), graceful: make(chan struct{}), stopped: make(chan struct{}), block: block}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Serve(ctx, f, ln, 50*time.Millisecond) }()
		if got := <-f.served; got != ln {
			t.Fatal("served another listener")
		}
		cancel()
		<-f.graceful
		if err := <-done; err != nil {
			t.Fatalf("block=%v: %v", block, err)
		}
		select {
		case <-f.stopped:
		default:
			t.Fatalf("block=%v: the server was not stopped", block)
		}
		ln.Close()
	}
}
