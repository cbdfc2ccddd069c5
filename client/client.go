// Package client is a Go client of Aviso's JSON API (v1): one typed method per route, the
// API's errors as *Error (code, message, field), cursor iterators over every list (iter.Seq2),
// and retries with backoff on 5xx, 429 and network errors for the calls that are safe to repeat
// (GET, PATCH, DELETE, and publishes that carry an event id). The CLI's verbs are built on it.
//
//	c := client.New("http://127.0.0.1:8080", os.Getenv("AVISO_KEY"))
//	ev, created, err := c.Publish(ctx, "acme", client.PublishInput{ID: "FAC-1", Type: "invoice.created", Data: data})
//	for d, err := range c.EventDeliveries(ctx, "acme", ev.ID) { … }
//
// The platform's operational endpoints (aviso.OperationalTenant) use the endpoint and delivery
// methods with that tenant ID: the client sends them to /v1/operational-endpoints and
// /v1/operational-deliveries.
//
// It imports only the standard library and the root package's types.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aviso-dev/aviso"
)

// Client calls one Aviso server. Its methods are safe for concurrent use.
type Client struct {
	base    string
	key     string
	hc      *http.Client
	retries int
	wait    func(try int) time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client. Default: one with a 60-second timeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithRetries sets how many times a call safe to repeat is retried after a 5xx, a 429 or a
// network error. Default 3; 0 turns retries off.
func WithRetries(n int) Option { return func(c *Client) { c.retries = max(0, n) } }

// WithBackoff sets the wait before retry number try (1, 2, …) when the server sends no
// Retry-After. Default: 200 ms doubling, at most 5 s, ±20 % jitter.
func WithBackoff(f func(try int) time.Duration) Option { return func(c *Client) { c.wait = f } }

// New returns a client of the server at baseURL (e.g. "http://127.0.0.1:8080") using the API
// key key (root or tenant).
func New(baseURL, key string, opts ...Option) *Client {
	c := &Client{base: strings.TrimSuffix(baseURL, "/"), key: key, hc: &http.Client{Timeout: 60 * time.Second},
		retries: 3, wait: defaultBackoff}
	for _, o := range opts {
		o(c)
	}
	return c
}

func defaultBackoff(try int) time.Duration {
	d := min(200*time.Millisecond<<min(try-1, 10), 5*time.Second)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Error is an error answer of the API.
type Error struct {
	Status    int    // the HTTP status
	Code      string `json:"code"`    // e.g. "invalid", "not_found" (aviso.EINVALID, …)
	Message   string `json:"message"` // what went wrong and how to fix it
	Field     string `json:"field"`   // the field at fault, if any
	RequestID string // the X-Request-Id of the answer
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s (%d): %s", e.Code, e.Status, e.Message)
	if e.Field != "" {
		s += " [field " + e.Field + "]"
	}
	return s
}

// ErrorCode returns the API error code of err ("" if err is not an *Error).
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// call is one request.
type call struct {
	method, path string
	query        url.Values
	body         any
	header       http.Header
	retry        bool // safe to repeat
}

// do sends the call, retrying as configured, and decodes a 2xx answer into out (if non-nil).
// It returns the answer's status.
func (c *Client) do(ctx context.Context, cl call, out any) (int, error) {
	var body []byte
	if cl.body != nil {
		var err error
		if body, err = json.Marshal(cl.body); err != nil {
			return 0, fmt.Errorf("aviso client: encode request: %w", err)
		}
	}
	u := c.base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	for try := 0; ; try++ {
		status, wait, err := c.once(ctx, cl, u, body, out)
		if err == nil || !cl.retry || try >= c.retries || wait < 0 {
			return status, err
		}
		if wait == 0 {
			wait = c.wait(try + 1)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return status, err
		case <-t.C:
		}
	}
}

// once makes one request. wait is -1 when the failure is not worth a retry, else how long the
// server asked to wait (0: no Retry-After).
func (c *Client) once(ctx context.Context, cl call, u string, body []byte, out any) (status int, wait time.Duration, err error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, rd)
	if err != nil {
		return 0, -1, fmt.Errorf("aviso client: %w", err)
	}
	for k, v := range cl.header {
		req.Header[k] = v
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	res, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, -1, err
		}
		return 0, 0, fmt.Errorf("aviso client: %s %s: %w", cl.method, cl.path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return res.StatusCode, 0, fmt.Errorf("aviso client: %s %s: read answer: %w", cl.method, cl.path, err)
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		if out != nil && len(b) > 0 {
			if raw, ok := out.(*[]byte); ok {
				*raw = b
			} else if err := json.Unmarshal(b, out); err != nil {
				return res.StatusCode, -1, fmt.Errorf("aviso client: %s %s: decode answer: %w", cl.method, cl.path, err)
			}
		}
		return res.StatusCode, 0, nil
	}
	e := &Error{Status: res.StatusCode, RequestID: res.Header.Get("X-Request-Id")}
	var eb struct {
		Error *Error `json:"error"`
	}
	if json.Unmarshal(b, &eb) == nil && eb.Error != nil {
		e.Code, e.Message, e.Field = eb.Error.Code, eb.Error.Message, eb.Error.Field
	} else {
		e.Code, e.Message = "http_"+strconv.Itoa(res.StatusCode), strings.TrimSpace(string(b))
	}
	wait = -1
	if res.StatusCode >= 500 || res.StatusCode == http.StatusTooManyRequests {
		wait = retryAfter(res.Header.Get("Retry-After"))
	}
	return res.StatusCode, wait, e
}

// retryAfter reads a Retry-After in seconds, capped at a minute; 0 when absent or malformed.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, time.Minute)
}

// get is a GET of path into a new T.
func get[T any](ctx context.Context, c *Client, path string, q url.Values) (*T, error) {
	out := new(T)
	if _, err := c.do(ctx, call{method: http.MethodGet, path: path, query: q, retry: true}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// send is a request with a JSON body decoded into a new T.
func send[T any](ctx context.Context, c *Client, method, path string, body any) (*T, error) {
	out := new(T)
	retry := method == http.MethodPatch || method == http.MethodDelete
	if _, err := c.do(ctx, call{method: method, path: path, body: body, retry: retry}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// ListOptions pages a list: After is a NextCursor ("" for the first page), Limit the page
// size (0: the server's default, 50; at most 500).
type ListOptions struct {
	After string
	Limit int
}

func (o ListOptions) query() url.Values {
	q := url.Values{}
	if o.After != "" {
		q.Set("after", o.After)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	return q
}

// all walks every page that list returns from the first, yielding each item; it stops at the
// first error, which it yields.
func all[T any](ctx context.Context, list func(ctx context.Context, after string) (*aviso.Page[T], error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		after := ""
		for {
			p, err := list(ctx, after)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, v := range p.Data {
				if !yield(v, nil) {
					return
				}
			}
			if !p.HasMore || p.NextCursor == "" {
				return
			}
			after = p.NextCursor
		}
	}
}

func esc(s string) string { return url.PathEscape(s) }
