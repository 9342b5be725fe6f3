package app

import (
	"context"
	"fmt"
	"net"
	"time"
)

// Server is a server that serves a listener and stops gracefully, such as
// a *grpc.Server.
type Server interface {
	Serve(net.Listener) error
	GracefulStop()
	Stop()
}

// GoServe adds a component that listens on addr and serves srv there
// until the service stops, then stops it gracefully within the drain
// timeout (and at once after it).
func (a *App) GoServe(name, addr string, srv Server) {
	a.Go(name, func(ctx context.Context) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s: listening on %s: %w", name, addr, err)
		}
		a.Log.Info(name+" listening", "addr", ln.Addr().String())
		return Serve(ctx, srv, ln, a.cfg.DrainTimeout)
	})
}

// Serve serves srv on ln until ctx ends, then stops it gracefully within
// drain.
func Serve(ctx context.Context, srv Server, ln net.Listener, drain time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(drain):
		srv.Stop()
	}
	return nil
}
