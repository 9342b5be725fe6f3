package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// URLPolicy is where a destination may send: the rule the API applies when
// a workspace's own key saves a destination (operator keys and the
// configuration file are trusted as they are), and the Deliverer applies
// again to the address each request actually dials, so a name that
// resolves elsewhere after the save (DNS rebinding) reaches nothing
// internal either.
//
// The zero policy is the strict one: https only; no loopback, private
// (RFC 1918, fc00::/7), shared (100.64.0.0/10), link-local (169.254.0.0/16
// — cloud metadata — and fe80::/10), unspecified or multicast address.
// An operator may allow http and internal addresses (API flags
// -destinations.allow-http and -destinations.allow-private).
type URLPolicy struct {
	AllowHTTP    bool
	AllowPrivate bool
}

// ErrURLRefused wraps every refusal of URLPolicy.
var ErrURLRefused = errors.New("destination url refused")

// CheckURL checks a URL's scheme and host as written, without resolving.
func (p URLPolicy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%w: url must be an absolute https URL", ErrURLRefused)
	}
	if u.Scheme == "http" && !p.AllowHTTP {
		return fmt.Errorf("%w: url must use https (plain http needs the operator's -destinations.allow-http)", ErrURLRefused)
	}
	if u.User != nil {
		return fmt.Errorf("%w: url must not carry credentials (user:password@)", ErrURLRefused)
	}
	if p.AllowPrivate {
		return nil
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("%w: %s is this machine", ErrURLRefused, host)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.CheckAddr(ip)
	}
	return nil
}

// CheckAddr checks one address a destination's host resolves to.
func (p URLPolicy) CheckAddr(ip netip.Addr) error {
	if p.AllowPrivate {
		return nil
	}
	if internal(ip) {
		return fmt.Errorf("%w: %s is a loopback, private, link-local or otherwise internal address", ErrURLRefused, ip)
	}
	return nil
}

// Check is CheckURL and, for a host name, CheckAddr of every address it
// resolves to now. A name that does not resolve passes (it may not exist
// yet); delivery checks the address it dials anyway.
func (p URLPolicy) Check(ctx context.Context, r *net.Resolver, raw string) error {
	if err := p.CheckURL(raw); err != nil || p.AllowPrivate {
		return err
	}
	u, _ := url.Parse(raw)
	host := u.Hostname()
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if err := p.CheckAddr(a); err != nil {
			return fmt.Errorf("%s resolves to %s: %w", host, a, err)
		}
	}
	return nil
}

var shared = netip.MustParsePrefix("100.64.0.0/10")

func internal(ip netip.Addr) bool {
	ip = ip.Unmap()
	return !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || shared.Contains(ip) ||
		(ip.Is4() && ip.As4()[0] == 0) // 0.0.0.0/8: "this network"
}

// literalInternal reports whether a URL names an internal host itself (an
// internal IP literal, or localhost): only an operator can have saved it.
func literalInternal(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && internal(ip)
}

type explicitKey struct{}

// guardedDial dials only addresses policy allows — or, for a URL naming an
// internal host literally, that host (see Deliverer.Policy). It resolves
// the name itself and dials the address it checked, so the check and the
// connection see the same address.
func guardedDial(policy func() URLPolicy, lookup func(ctx context.Context, network, host string) ([]netip.Addr, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		var addrs []netip.Addr
		if ip, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{ip}
		} else if addrs, err = lookup(ctx, "ip", host); err != nil {
			return nil, err
		}
		p := policy()
		if explicit, _ := ctx.Value(explicitKey{}).(bool); explicit {
			p.AllowPrivate = true
		}
		var last error
		for _, a := range addrs {
			if err := p.CheckAddr(a); err != nil {
				last = fmt.Errorf("%s resolves to %s: %w", host, a, err)
				continue
			}
			c, err := d.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
			if err == nil {
				return c, nil
			}
			last = err
		}
		if last == nil {
			last = fmt.Errorf("%s: no address", host)
		}
		return nil, last
	}
}
