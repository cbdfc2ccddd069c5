package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// apiClient speaks Aviso's JSON API v1 with the root key.
type apiClient struct {
	base string // e.g. "http://127.0.0.1:8080"
	key  string
	hc   *http.Client
}

// benchEventType is the catalog entry the scenarios publish: no schema, so the figures measure
// delivery rather than JSON Schema validation.
const benchEventType = "bench.event"

// do sends a JSON request and decodes a 2xx answer into out (when not nil). Any other status is
// an error quoting the answer.
func (c *apiClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if b, ok := in.([]byte); ok {
		body = bytes.NewReader(b)
	} else if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return &statusError{Method: method, Path: path, Status: resp.StatusCode, Body: string(bytes.TrimSpace(msg))}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// statusError is a non-2xx answer of the API.
type statusError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// ensureEventType adds benchEventType to the catalog unless it is there already.
func (c *apiClient) ensureEventType(ctx context.Context) error {
	err := c.do(ctx, http.MethodPost, "/v1/event-types", map[string]string{
		"name": benchEventType, "description": "Published by aviso bench.",
	}, nil)
	if se, ok := err.(*statusError); ok && se.Status == http.StatusConflict {
		return nil
	}
	return err
}

func (c *apiClient) createTenant(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/v1/tenants", map[string]string{"id": id, "name": "aviso bench " + id}, nil)
}

func (c *apiClient) deleteTenant(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/tenants/"+id, nil, nil)
}

// createEndpoint subscribes url to benchEventType without the handshake and returns its ID.
func (c *apiClient) createEndpoint(ctx context.Context, tenant, url string, timeoutSeconds int) (string, error) {
	return c.createEndpointWith(ctx, tenant, url, timeoutSeconds, nil)
}

// createEndpointWith is createEndpoint with more fields of the endpoint (extra).
func (c *apiClient) createEndpointWith(ctx context.Context, tenant, url string, timeoutSeconds int, extra map[string]any) (string, error) {
	in := map[string]any{"url": url, "event_types": []string{benchEventType}, "verify": false}
	for k, v := range extra {
		in[k] = v
	}
	if timeoutSeconds > 0 {
		in["timeout_seconds"] = timeoutSeconds
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := c.do(ctx, http.MethodPost, "/v1/tenants/"+tenant+"/endpoints", in, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", fmt.Errorf("create endpoint: the answer carries no id")
	}
	return out.ID, nil
}

// createLimitedEndpoint subscribes url to benchEventType with a rate limit (deliveries per
// second), without the handshake, and returns its ID.
func (c *apiClient) createLimitedEndpoint(ctx context.Context, tenant, url string, perSecond int) (string, error) {
	in := map[string]any{"url": url, "event_types": []string{benchEventType}, "verify": false, "rate_limit": perSecond}
	var out struct {
		ID string `json:"id"`
	}
	if err := c.do(ctx, http.MethodPost, "/v1/tenants/"+tenant+"/endpoints", in, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", fmt.Errorf("create endpoint: the answer carries no id")
	}
	return out.ID, nil
}

func (c *apiClient) deleteEndpoint(ctx context.Context, tenant, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/tenants/"+tenant+"/endpoints/"+id, nil, nil)
}

// eventJSON appends one publish request's JSON for an event with the given ID and external
// reference ("" for none).
func eventJSON(b []byte, id, ref string) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendQuote(b, id)
	if ref != "" {
		b = append(b, `,"external_reference":`...)
		b = strconv.AppendQuote(b, ref)
	}
	b = append(b, `,"type":"`+benchEventType+`","data":`+samplePayload+`}`...)
	return b
}

// publish publishes one event with the given ID.
func (c *apiClient) publish(ctx context.Context, tenant, id string) error {
	return c.do(ctx, http.MethodPost, "/v1/tenants/"+tenant+"/events", eventJSON(nil, id, ""), nil)
}

// publishBatch publishes the events with the given IDs in one request, with the external
// references refs (nil: none).
func (c *apiClient) publishBatch(ctx context.Context, tenant string, ids, refs []string) error {
	b := make([]byte, 0, 64+len(ids)*(len(samplePayload)+80))
	b = append(b, `{"events":[`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		ref := ""
		if refs != nil {
			ref = refs[i]
		}
		b = eventJSON(b, id, ref)
	}
	b = append(b, "]}"...)
	return c.do(ctx, http.MethodPost, "/v1/tenants/"+tenant+"/events/batch", b, nil)
}
