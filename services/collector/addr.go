package main

import (
	"net"
	"net/netip"
)

// parseAddr accepts "ip", "ip:port" and "[v6]:port".
func parseAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func trusted(a netip.Addr, cfg *Config) bool {
	for _, p := range cfg.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
