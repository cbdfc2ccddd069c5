package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/internal/backoff"
	"github.com/aviso-dev/aviso/webhook"
)

// aviso listen streams a tenant's events (GET …/events/stream) and forwards each to a local URL
// exactly as an endpoint in the chosen format receives it: the body and headers come from
// webhook.Build, the code the delivery engine signs with, under a secret printed at start (or
// --secret). It replaces a tunnel for developing a receiver. Each event is forwarded once, with
// no retry: the line it prints says what the receiver answered. When the stream breaks (the
// server restarts, the network fails) it reconnects with the cursor of the last event it
// forwarded (Last-Event-ID), so nothing is missed or forwarded twice while it runs.

// listenTimeout bounds one forward, as an endpoint's default timeout.
const listenTimeout = time.Duration(aviso.DefaultTimeoutSeconds) * time.Second

type listenCmd struct {
	remote    *remote
	tenant    string
	forwardTo string
	types     []string
	format    aviso.Format
	secret    string
	token     string
	since     time.Time
	out       io.Writer
	now       func() time.Time
	forwarder *http.Client
}

func (m *Main) parseListen(args []string) error {
	fs := m.flagSet("listen")
	c := &listenCmd{remote: m.remoteFlags(fs), out: m.stdout, now: time.Now, forwarder: &http.Client{
		Timeout:       listenTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, // as the engine
	}}
	fs.StringVar(&c.tenant, "tenant", "", "tenant whose events to forward (needed with the root key; a tenant key's own otherwise)")
	fs.StringVar(&c.forwardTo, "forward-to", "", "local URL to POST each event to, e.g. http://localhost:3000/webhook (required)")
	types := fs.String("types", "", "only these event types, comma-separated, e.g. invoice.created,invoice.paid (default: all)")
	format := fs.String("format", string(aviso.FormatStandard), "payload format the receiver expects: standard, alegra, facturascripts or tusfacturas")
	fs.StringVar(&c.secret, "secret", "", "signing secret (whsec_…); default: a new one, printed at start")
	fs.StringVar(&c.token, "token", "", "TF-WebhookToken of the tusfacturas format; default: a new one, printed at start")
	since := fs.String("since", "", "replay the events published since this RFC 3339 time or this long ago (e.g. 1h) first; default: only new events")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("listen: unexpected argument %q (flags only)", pos[0])
	}
	if err := c.remote.check(); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if u, err := url.Parse(c.forwardTo); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("listen: --forward-to must be the receiver's http(s) URL, e.g. http://localhost:3000/webhook")
	}
	c.types = splitList(*types)
	c.format = aviso.Format(*format)
	if !slices.Contains(aviso.Formats(), c.format) {
		return fmt.Errorf("listen: --format %q is not one of standard, alegra, facturascripts, tusfacturas", *format)
	}
	if c.secret == "" {
		c.secret = webhook.NewSecret()
	} else if _, err := webhook.SecretKey(c.secret); err != nil {
		return fmt.Errorf("listen: --secret: %w", err)
	}
	if c.token == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		c.token = hex.EncodeToString(b[:])
	}
	if *since != "" {
		if c.since, err = parseSince(*since, time.Now()); err != nil {
			return fmt.Errorf("listen: --since: %w", err)
		}
	}
	m.run = c.run
	return nil
}

// parseSince reads an RFC 3339 time or a duration back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-03-04T10:00:00Z) nor a duration (1h)", s)
}

// endpoint is the endpoint the forwarded requests are rendered for.
func (c *listenCmd) endpoint() *aviso.Endpoint {
	return &aviso.Endpoint{ID: "listen", TenantID: c.tenant, URL: c.forwardTo, Format: c.format,
		Secrets: []aviso.Secret{{Value: c.secret}}, Token: c.token, TimeoutSeconds: aviso.DefaultTimeoutSeconds}
}

func (c *listenCmd) run(ctx context.Context) error {
	var err error
	if c.tenant, err = c.remote.tenant(ctx, c.tenant); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(c.out, "Forwarding the events of tenant %s from %s to %s (format %s", c.tenant, c.remote.url, c.forwardTo, c.format)
	if len(c.types) > 0 {
		fmt.Fprintf(c.out, ", types %s", strings.Join(c.types, ","))
	}
	fmt.Fprintf(c.out, ")\nSigning secret: %s\n", c.secret)
	if c.format == aviso.FormatTusFacturas {
		fmt.Fprintf(c.out, "TF-WebhookToken: %s\n", c.token)
	}
	fmt.Fprintln(c.out, "Press Ctrl-C to stop.")

	cursor := ""
	bo := backoff.Backoff{Min: 250 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.2}
	connected, lost := false, false
	for {
		err := c.stream(ctx, &cursor, func() {
			bo.Reset()
			if lost {
				fmt.Fprintf(c.out, "%s  reconnected\n", c.stamp())
			}
			connected, lost = true, false
		})
		if ctx.Err() != nil {
			return nil
		}
		var ae *apiError
		if errors.As(err, &ae) && ae.status < 500 {
			return fmt.Errorf("listen: %w", err) // a bad key, tenant or type: trying again will not help
		}
		if !connected {
			return fmt.Errorf("listen: %w", err)
		}
		if !lost {
			fmt.Fprintf(c.out, "%s  connection to Aviso lost (%v); reconnecting\n", c.stamp(), err)
			lost = true
		}
		if bo.Wait(ctx) != nil {
			return nil
		}
	}
}

func (c *listenCmd) stamp() string { return c.now().UTC().Format(time.RFC3339) }

// stream reads the event stream from *cursor until it ends, forwarding each event and moving
// *cursor past it; up is called once the stream is open.
func (c *listenCmd) stream(ctx context.Context, cursor *string, up func()) error {
	q := url.Values{}
	if len(c.types) > 0 {
		q.Set("types", strings.Join(c.types, ","))
	}
	if *cursor == "" && !c.since.IsZero() {
		q.Set("since", c.since.UTC().Format(time.RFC3339Nano))
	}
	h := http.Header{"Accept": {"text/event-stream"}}
	if *cursor != "" {
		h.Set("Last-Event-ID", *cursor)
	}
	resp, err := c.remote.request(ctx, "GET", "/v1/tenants/"+url.PathEscape(c.tenant)+"/events/stream?"+q.Encode(), nil, h)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := answerError(resp); err != nil {
		return err
	}
	up()
	ep := c.endpoint()
	rd := bufio.NewReader(resp.Body)
	var id, event string
	var data bytes.Buffer
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			if err == io.EOF {
				err = errors.New("the server closed the stream")
			}
			return err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line != "" {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				id = value
			case "event":
				event = value
			case "data":
				data.WriteString(value)
			}
			continue
		}
		// A blank line ends a message.
		if data.Len() > 0 {
			var ev aviso.Event
			if err := json.Unmarshal(data.Bytes(), &ev); err != nil {
				return fmt.Errorf("read an event of type %q from the stream: %w", event, err)
			}
			c.forward(ctx, ep, &ev)
		}
		if id != "" {
			*cursor = id
		}
		id, event = "", ""
		data.Reset()
	}
}

// forward POSTs one event to the receiver as its endpoint would get it, and prints a line.
func (c *listenCmd) forward(ctx context.Context, ep *aviso.Endpoint, ev *aviso.Event) {
	start := c.now()
	status := ""
	req, err := webhook.Build(ep, ev, start)
	if err == nil {
		var hr *http.Request
		hr, err = http.NewRequestWithContext(ctx, http.MethodPost, c.forwardTo, bytes.NewReader(req.Body))
		if err == nil {
			hr.Header = req.Header // copied as is: TF-WebhookToken keeps its spelling (see webhook.Request)
			var resp *http.Response
			if resp, err = c.forwarder.Do(hr); err == nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				status = fmt.Sprintf("%d", resp.StatusCode)
			}
		}
	}
	if err != nil {
		status = "error: " + err.Error()
	}
	fmt.Fprintf(c.out, "%s  %-22s %s  → %s  %dms\n", start.UTC().Format(time.RFC3339), ev.Type, ev.ID, status,
		c.now().Sub(start).Milliseconds())
}
