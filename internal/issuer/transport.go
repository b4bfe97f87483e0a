/*
Copyright 2026 The tokenmint Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package issuer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// DefaultTimeout bounds a call when the issuer sets no timeout.
const DefaultTimeout = 30 * time.Second

// maxRedirects is how many same-host redirects a call may follow; token
// endpoints rarely redirect at all, and a loop should fail fast.
const maxRedirects = 3

// Resolver looks up the addresses of a host; *net.Resolver implements it.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// DialFunc opens a connection, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// TransportConfig describes the HTTP client of one issuer.
type TransportConfig struct {
	// Timeout bounds a whole call, reading the response included; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// CABundle is PEM certificates trusted in addition to the system roots.
	CABundle []byte
	// GuardPrivateDestinations refuses connections to loopback, link-local,
	// private and other non-public addresses, checked on the resolved address
	// when dialling, so that neither DNS nor a redirect can get around it. It also
	// disables proxies, whose own address would otherwise be the one checked.
	GuardPrivateDestinations bool
	// Resolver resolves host names for the guard; nil uses net.DefaultResolver.
	Resolver Resolver
	// ClientCertificate, when set, is presented to endpoints that ask for one
	// (mutual TLS, RFC 8705).
	ClientCertificate *tls.Certificate
	// DialContext is the dialer connections go through; nil uses a net.Dialer.
	// With the guard on it only ever receives IP literals that passed the check.
	DialContext DialFunc
}

// ErrPrivateDestination is matched (errors.Is) by a connection the dial guard
// refused.
var ErrPrivateDestination = errors.New("destination address is not public")

// NewHTTPClient builds the client an issuer's calls go through: TLS 1.2 or
// later, the CA bundle added to the system roots, a timeout, no redirect to
// another host, and the optional dial guard.
func NewHTTPClient(cfg TransportConfig) (*http.Client, error) {
	roots, err := rootCAs(cfg.CABundle)
	if err != nil {
		return nil, err
	}
	dial := cfg.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dial,
		TLSClientConfig:       tlsConfig(roots, cfg.ClientCertificate),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   10,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 0, // the client timeout covers it
	}
	if cfg.GuardPrivateDestinations {
		resolver := cfg.Resolver
		if resolver == nil {
			resolver = net.DefaultResolver
		}
		transport.Proxy = nil
		transport.DialContext = guardedDialer{resolver: resolver, dial: dial}.DialContext
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &http.Client{Transport: transport, Timeout: timeout, CheckRedirect: sameHostRedirects}, nil
}

// rootCAs returns the system roots plus bundle, or nil (the system roots) when
// there is no bundle.
func rootCAs(bundle []byte) (*x509.CertPool, error) {
	if len(bundle) == 0 {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(bundle) {
		return nil, errors.New("caBundle holds no PEM certificate")
	}
	return pool, nil
}

// errRedirectRefused marks a redirect the client would not follow.
var errRedirectRefused = errors.New("redirect refused")

// sameHostRedirects follows a few redirects to the same scheme and host only.
// Go would drop the Authorization header on a cross-host redirect, but the body
// may carry credentials too, so such a redirect is refused outright. A
// request signed for its URL (AWS Signature Version 4) follows none: its
// signature would be replayed at another path.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	switch {
	case isSignedRequest(via[0]):
		return fmt.Errorf("%w: a signed request follows no redirect", errRedirectRefused)
	case len(via) > maxRedirects:
		return fmt.Errorf("%w: more than %d redirects", errRedirectRefused, maxRedirects)
	case req.URL.Host != first.Host:
		return fmt.Errorf("%w: to another host (%s)", errRedirectRefused, req.URL.Host)
	case req.URL.Scheme != first.Scheme:
		return fmt.Errorf("%w: from %s to %s", errRedirectRefused, first.Scheme, req.URL.Scheme)
	}
	return nil
}

// guardedDialer resolves the host itself, checks every address, and dials the
// checked IP literal, so the address checked is the address connected to.
type guardedDialer struct {
	resolver Resolver
	dial     DialFunc
}

func (g guardedDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := g.lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	// Every address must pass: a name that resolves to one public and one
	// private address would otherwise reach the private one on a retry.
	for _, ip := range ips {
		if !isPublic(ip) {
			return nil, fmt.Errorf("%w: %s resolves to %s", ErrPrivateDestination, host, ip)
		}
	}
	var dialErrs []error
	for _, ip := range ips {
		conn, err := g.dial(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		dialErrs = append(dialErrs, err)
	}
	return nil, errors.Join(dialErrs...)
}

func (g guardedDialer) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	resolved, err := g.resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	ips := make([]netip.Addr, 0, len(resolved))
	for _, r := range resolved {
		ip, ok := netip.AddrFromSlice(r.IP)
		if !ok {
			return nil, fmt.Errorf("%s resolved to an unusable address %v", host, r.IP)
		}
		// net.IP holds IPv4 addresses in 16 bytes; dial them as IPv4.
		ips = append(ips, ip.Unmap())
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%s resolved to no address", host)
	}
	return ips, nil
}

// nonPublicPrefixes are ranges the standard library's predicates do not cover
// but that are not the public internet either (RFC 6890 and its updates).
var nonPublicPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, and broadcast
	netip.MustParsePrefix("::/96"),          // IPv4-compatible (deprecated)
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64 to any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("100::/64"),       // discard-only
	netip.MustParsePrefix("2001::/32"),      // Teredo, which embeds an IPv4 address
	netip.MustParsePrefix("2002::/16"),      // 6to4, which embeds an IPv4 address
	netip.MustParsePrefix("fec0::/10"),      // site-local (deprecated)
}

// isPublic reports whether ip may be dialled by a guarded client. IPv4-mapped
// IPv6 addresses (::ffff:10.0.0.1) are judged as the IPv4 address they carry.
func isPublic(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() ||
		ip.IsMulticast() {
		return false
	}
	for _, prefix := range nonPublicPrefixes {
		if prefix.Contains(ip) {
			return false
		}
	}
	return true
}

func tlsConfig(roots *x509.CertPool, cert *tls.Certificate) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}
