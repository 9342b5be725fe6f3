package sources

import (
	"context"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// Live is a registry that follows its file: Current always returns the last
// registry that loaded without error. A broken edit is logged and ignored,
// so a typo cannot lock every sender out.
type Live struct {
	path string
	cur  atomic.Pointer[Registry]
	mod  time.Time
	size int64
	// OnReload is called after every reload attempt (for metrics).
	OnReload func(err error)
}

// NewLive loads path once; a bad file at start is an error.
func NewLive(path string) (*Live, error) {
	l := &Live{path: path}
	if err := l.reload(); err != nil {
		return nil, err
	}
	return l, nil
}

// Static wraps a fixed registry (tests, embedded use).
func Static(r *Registry) *Live {
	l := &Live{}
	l.cur.Store(r)
	return l
}

// Publish puts r in force, for a registry built elsewhere than from the
// file (pkg/controlplane builds it from the config topic), and reports the
// attempt to OnReload; err != nil keeps the registry in force.
func (l *Live) Publish(r *Registry, err error) {
	if err == nil && r != nil {
		l.cur.Store(r)
	}
	if l.OnReload != nil {
		l.OnReload(err)
	}
}

// Current is the registry in force.
func (l *Live) Current() *Registry { return l.cur.Load() }

// Watch polls the file every interval until ctx ends.
func (l *Live) Watch(ctx context.Context, interval time.Duration, log *slog.Logger) error {
	if l.path == "" {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		st, err := os.Stat(l.path)
		if err != nil || (st.ModTime().Equal(l.mod) && st.Size() == l.size) {
			continue
		}
		if err := l.reload(); err != nil {
			log.Error("sources file changed but is invalid; keeping the previous one", "path", l.path, "err", err)
			if l.OnReload != nil {
				l.OnReload(err)
			}
			continue
		}
		log.Info("sources reloaded", "path", l.path, "sources", l.Current().Sources())
		if l.OnReload != nil {
			l.OnReload(nil)
		}
	}
}

func (l *Live) reload() error {
	st, err := os.Stat(l.path)
	if err != nil {
		return err
	}
	reg, err := Load(l.path)
	// Remember the version even when it is broken, so it is reported once.
	l.mod, l.size = st.ModTime(), st.Size()
	if err != nil {
		return err
	}
	l.cur.Store(reg)
	return nil
}
