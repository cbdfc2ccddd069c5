package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// remote is the Aviso server that aviso listen and aviso trigger talk to, over its JSON API.
type remote struct {
	url, key string
	client   *http.Client
}

// remoteFlags adds --url and --key (defaults from AVISO_URL and AVISO_KEY) to fs.
func (m *Main) remoteFlags(fs *flag.FlagSet) *remote {
	r := &remote{client: &http.Client{}}
	fs.StringVar(&r.url, "url", m.envString("AVISO_URL", "http://127.0.0.1:8080"), "URL of the Aviso server (env AVISO_URL)")
	fs.StringVar(&r.key, "key", m.getenv("AVISO_KEY"), "API key: a tenant key, or the root key with --tenant (env AVISO_KEY)")
	return r
}

// check validates the flags once parsed.
func (r *remote) check() error {
	if r.key == "" {
		return errors.New("an API key is required: pass --key or set AVISO_KEY (a tenant key, or the root key with --tenant)")
	}
	u, err := url.Parse(r.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q is not an http(s) URL such as http://127.0.0.1:8080", r.url)
	}
	r.url = strings.TrimRight(r.url, "/")
	return nil
}

// apiError is an error answer of the API, said for a person.
type apiError struct {
	status        int
	code, message string
	field         string
}

func (e *apiError) Error() string {
	msg := e.message
	if e.field != "" {
		msg = e.field + ": " + msg
	}
	switch e.status {
	case http.StatusUnauthorized:
		return "Aviso refused the API key: " + msg + " (check --key or AVISO_KEY)"
	case http.StatusForbidden:
		return "this API key may not do that: " + msg
	}
	return fmt.Sprintf("Aviso answered %d %s: %s", e.status, e.code, msg)
}

// unreachable says that the server could not be reached, and what to check.
func (r *remote) unreachable(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("Aviso at %s did not answer in time (%v)", r.url, err)
	}
	return fmt.Errorf("cannot reach Aviso at %s: %v (is `aviso serve` running there? set --url or AVISO_URL)", r.url, errors.Unwrap(err))
}

// request makes a request of the API with the key, and returns the response, whatever its status.
func (r *remote) request(ctx context.Context, method, path string, body any, header http.Header) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.url+path, rd)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", path, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+r.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, r.unreachable(err)
	}
	return resp, nil
}

// call makes a request and decodes a 2xx answer into out (when not nil); another status is an
// *apiError.
func (r *remote) call(ctx context.Context, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := r.request(ctx, method, path, body, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := answerError(resp); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("read Aviso's answer to %s %s: %w", method, path, err)
	}
	return nil
}

// answerError returns nil for a 2xx response, else the API's error, read from the body.
func answerError(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	var body struct {
		Error struct{ Code, Message, Field string }
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &body) != nil || body.Error.Code == "" {
		body.Error.Code, body.Error.Message = "", strings.TrimSpace(string(b))
		if body.Error.Message == "" {
			body.Error.Message = http.StatusText(resp.StatusCode)
		}
		if resp.StatusCode == http.StatusNotFound {
			body.Error.Message += " (is --url an Aviso server?)"
		}
	}
	return &apiError{status: resp.StatusCode, code: body.Error.Code, message: body.Error.Message, field: body.Error.Field}
}

// tenant returns the tenant to act on: the key's own, or --tenant for a root key.
func (r *remote) tenant(ctx context.Context, flagTenant string) (string, error) {
	var k struct {
		TenantID string `json:"tenant_id"`
		Root     bool   `json:"root"`
	}
	if err := r.call(ctx, "GET", "/v1/key", nil, &k); err != nil {
		return "", err
	}
	switch {
	case !k.Root && flagTenant != "" && flagTenant != k.TenantID:
		return "", fmt.Errorf("the API key belongs to tenant %q, not %q: drop --tenant or use that tenant's key", k.TenantID, flagTenant)
	case !k.Root:
		return k.TenantID, nil
	case flagTenant == "":
		return "", errors.New("the API key is the root key: say which tenant with --tenant, or use a tenant key")
	}
	return flagTenant, nil
}

// parseArgs parses fs from args, taking positional arguments before, between and after flags, as
// `aviso trigger invoice.paid --key …` is written; it returns the positional ones.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}
