package dispatch

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/netguard"
	"github.com/aviso-dev/aviso/internal/tracing"
	"github.com/aviso-dev/aviso/webhook"
)

// maxDiscard is how much of a response body beyond aviso.MaxResponseBody is read and thrown away
// so the connection can be kept alive; a larger body closes the connection instead.
const maxDiscard = 64 << 10

// newTransport returns the HTTP transport every attempt uses: connections are dialled through the
// SSRF guard (checked on the resolved IP), never through an environment proxy (a proxy would hide
// the destination from the guard), and kept alive per host.
func newTransport(guard *netguard.Guard, workers int) *http.Transport {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: guard.Control}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           4 * workers,
		MaxIdleConnsPerHost:    workers, // several endpoints may share one host
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
}

// Timeout returns how long an attempt to ep may take: its TimeoutSeconds, or
// aviso.DefaultTimeoutSeconds when unset, never more than aviso.MaxTimeoutSeconds.
func Timeout(ep *aviso.Endpoint) time.Duration {
	s := ep.TimeoutSeconds
	if s <= 0 {
		s = aviso.DefaultTimeoutSeconds
	}
	return time.Duration(min(s, aviso.MaxTimeoutSeconds)) * time.Second
}

// Send makes one attempt to deliver ev to ep, outside the delivery loop (the API's "send test
// event"). Nothing is stored: the caller gets the attempt with its outcome; the attempt's
// DeliveryID is empty. It never returns nil.
func (d *Dispatcher) Send(ctx context.Context, ep *aviso.Endpoint, ev *aviso.Event) *aviso.Attempt {
	a, _ := d.send(ctx, ep, ev)
	return a
}

// Do POSTs a request already rendered (for example the empty-bodied subscription handshake) to
// ep, as every attempt is made: through the SSRF guard, with the endpoint's timeout, without
// following redirects. eventID is recorded on the attempt. It never returns nil; the request is
// not modified.
func (d *Dispatcher) Do(ctx context.Context, ep *aviso.Endpoint, req *webhook.Request, eventID string) *aviso.Attempt {
	opened, err := d.cfg.Keys.Opened(ep) // its auth may still be sealed
	if err != nil {
		a := d.newAttempt(ep, eventID, d.now(), req.Header)
		a.Error = err.Error()
		return a
	}
	a, _ := d.do(ctx, opened, req, eventID, d.now(), true)
	return a
}

// send renders and makes one attempt, and returns the receiver's Retry-After (0 if none).
func (d *Dispatcher) send(ctx context.Context, ep *aviso.Endpoint, ev *aviso.Event) (*aviso.Attempt, time.Duration) {
	now := d.now()
	opened, err := d.cfg.Keys.Opened(ep) // claims carry the endpoint as stored
	if err != nil {
		a := d.newAttempt(ep, ev.ID, now, nil)
		a.Error = err.Error()
		return a, 0
	}
	ep = opened
	req, err := webhook.Build(ep, ev, now)
	if err != nil {
		a := d.newAttempt(ep, ev.ID, now, nil)
		a.Error = fmt.Sprintf("render request: %v", err)
		return a, 0
	}
	return d.do(ctx, ep, req, ev.ID, now, false) // req is this attempt's own: no copy of its header
}

// newAttempt starts the record of an attempt with the request's headers, write-only values
// redacted: the endpoint's secret headers and the TusFacturas token (authorization is recorded,
// redacted, where it is set).
func (d *Dispatcher) newAttempt(ep *aviso.Endpoint, eventID string, now time.Time, h http.Header) *aviso.Attempt {
	headers := make(map[string]string, len(h))
	for k, v := range h {
		headers[k] = strings.Join(v, ", ")
	}
	if _, ok := headers[webhook.TokenHeader]; ok {
		headers[webhook.TokenHeader] = aviso.Redacted
	}
	for k := range ep.SecretHeaders {
		if k = http.CanonicalHeaderKey(k); headers[k] != "" {
			headers[k] = aviso.Redacted
		}
	}
	return &aviso.Attempt{
		ID:             aviso.NewID(aviso.PrefixAttempt, now),
		TenantID:       ep.TenantID,
		EndpointID:     ep.ID,
		EventID:        eventID,
		At:             now.UTC(),
		URL:            ep.URL,
		RequestHeaders: headers,
	}
}

// do POSTs req to ep. With shared, req belongs to the caller and its header is copied first, so
// that it is never modified.
func (d *Dispatcher) do(ctx context.Context, ep *aviso.Endpoint, req *webhook.Request, eventID string, now time.Time, shared bool) (*aviso.Attempt, time.Duration) {
	a := d.newAttempt(ep, eventID, now, req.Header)
	timeout := Timeout(ep)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client, err := d.clientFor(ep)
	if err != nil {
		a.Error = err.Error()
		return a, 0
	}
	header := req.Header
	if shared || ep.Auth != nil {
		header = req.Header.Clone() // authorization is added to this attempt's copy only
	}
	if ep.SendTraceparent {
		// The trace context ctx carries: the attempt's span (internal/tracing.Attempts), or
		// the publisher's traceparent passed through when tracing is off.
		tracing.Inject(ctx, header)
		for _, k := range []string{"Traceparent", "Tracestate"} {
			if v := header.Get(k); v != "" {
				a.RequestHeaders[k] = v
			}
		}
	}
	start := d.now()
	var resp *http.Response
	for stale := ""; ; {
		hr, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(req.Body))
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // url.Error's text holds the whole URL, credentials and query included
			}
			a.Error = fmt.Sprintf("invalid URL %q: %v", aviso.RedactURL(ep.URL), err)
			return a, 0
		}
		hr.Header = header
		logged, token, err := d.authorize(ctx, ep, hr, stale, timeout)
		if err != nil {
			a.DurationMS = d.now().Sub(start).Milliseconds()
			a.Error = err.Error()
			return a, 0
		}
		if logged != "" {
			a.RequestHeaders["Authorization"] = logged
		}
		resp, err = client.Do(hr)
		if err != nil {
			a.DurationMS = d.now().Sub(start).Milliseconds()
			a.Error = describe(ctx, err, timeout)
			return a, 0
		}
		if resp.StatusCode != http.StatusUnauthorized || token == "" || stale != "" {
			break
		}
		// The receiver refused the OAuth2 token (revoked, or expired early): once, with a new one.
		_, _ = io.CopyN(io.Discard, resp.Body, maxDiscard)
		resp.Body.Close()
		stale = token
	}
	buf := d.bufs.Get().(*[aviso.MaxResponseBody]byte)
	n, _ := io.ReadFull(resp.Body, buf[:])
	a.ResponseBody = string(buf[:n])
	d.bufs.Put(buf)
	if n == aviso.MaxResponseBody {
		_, _ = io.CopyN(io.Discard, resp.Body, maxDiscard)
	}
	resp.Body.Close()
	a.DurationMS = d.now().Sub(start).Milliseconds()
	a.ResponseStatus = resp.StatusCode

	var retryAfter time.Duration
	switch code := resp.StatusCode; {
	case code >= 300 && code < 400:
		a.Error = fmt.Sprintf("redirect %d not followed", code)
		if loc := resp.Header.Get("Location"); loc != "" {
			a.Error += " (Location: " + aviso.RedactURL(loc) + ")"
		}
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		retryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), now)
	}
	return a, retryAfter
}

// describe turns a failed request into the error an attempt records: short, and saying what
// happened in the receiver's terms rather than Go's.
func describe(ctx context.Context, err error, timeout time.Duration) string {
	var (
		op      *net.OpError
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		urlErr  *url.Error
	)
	switch {
	case errors.Is(err, netguard.ErrBlocked):
		host := "the destination"
		if errors.As(err, &op) && op.Addr != nil {
			if h, _, e := net.SplitHostPort(op.Addr.String()); e == nil {
				host = h
			}
		}
		return fmt.Sprintf("refused: %s is a loopback, private, link-local or metadata address (SSRF guard; the server's --allow-private-networks lifts this)", host)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Sprintf("timeout after %s", timeout)
	case errors.Is(ctx.Err(), context.Canceled):
		return "cancelled before a response arrived"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by peer"
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("DNS lookup of %s failed: %s", dnsErr.Name, dnsErr.Err)
	case errors.As(err, &certErr):
		return fmt.Sprintf("TLS certificate not valid: %v", certErr.Err)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before a response arrived"
	case errors.As(err, &urlErr):
		return fmt.Sprintf("network error: %v", urlErr.Err)
	}
	return fmt.Sprintf("network error: %v", err)
}

// ParseRetryAfter reads a Retry-After header, in delay-seconds or as an HTTP date, and returns
// how long to wait from now; 0 when the header is absent, malformed or in the past. The result
// is capped at aviso.MaxRetryAfter.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return aviso.MaxRetryAfter
			}
			return 0
		}
		if secs >= uint64(aviso.MaxRetryAfter/time.Second) {
			return aviso.MaxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	wait := t.Sub(now)
	if wait <= 0 {
		return 0
	}
	return min(wait, aviso.MaxRetryAfter)
}
