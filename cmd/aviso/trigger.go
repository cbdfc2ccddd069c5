package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// aviso trigger publishes one event through the API, with the catalog's example as its data
// unless --data gives other: what a developer runs to see a receiver (or aviso listen) get an
// event of a type.

type triggerCmd struct {
	remote    *remote
	eventType string
	tenant    string
	data      json.RawMessage // nil: the catalog's example
	reference string
	id        string
	out       io.Writer
}

func (m *Main) parseTrigger(args []string) error {
	fs := m.flagSet("trigger")
	c := &triggerCmd{remote: m.remoteFlags(fs), out: m.stdout}
	fs.StringVar(&c.tenant, "tenant", "", "tenant to publish for (needed with the root key; a tenant key's own otherwise)")
	data := fs.String("data", "", "the event's data: JSON, @file.json, or @- for standard input (default: the catalog's example)")
	fs.StringVar(&c.reference, "external-reference", "", "the event's external_reference, e.g. the invoice number")
	fs.StringVar(&c.id, "id", "", "the event's ID (publishing it again sends nothing new); default: a new one")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: aviso trigger <event type> [flags], e.g. aviso trigger invoice.paid --tenant acme")
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errors.New("trigger: name one event type, e.g. aviso trigger invoice.paid")
	}
	c.eventType = pos[0]
	if err := c.remote.check(); err != nil {
		return fmt.Errorf("trigger: %w", err)
	}
	if *data != "" {
		b := []byte(*data)
		switch {
		case *data == "@-":
			b, err = io.ReadAll(os.Stdin)
		case strings.HasPrefix(*data, "@"):
			b, err = os.ReadFile(strings.TrimPrefix(*data, "@"))
		}
		if err != nil {
			return fmt.Errorf("trigger: --data: %w", err)
		}
		if !json.Valid(b) {
			return fmt.Errorf("trigger: --data is not valid JSON: %.80q", b)
		}
		c.data = b
	}
	m.run = c.run
	return nil
}

func (c *triggerCmd) run(ctx context.Context) error {
	tenant, err := c.remote.tenant(ctx, c.tenant)
	if err != nil {
		return fmt.Errorf("trigger: %w", err)
	}
	if c.data == nil {
		var et struct {
			Example json.RawMessage `json:"example"`
		}
		err := c.remote.call(ctx, "GET", "/v1/event-types/"+url.PathEscape(c.eventType), nil, &et)
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusNotFound {
			return fmt.Errorf("trigger: the event type %q is not in the catalog; see the catalog with: curl -H 'Authorization: Bearer <key>' %s/v1/event-types",
				c.eventType, c.remote.url)
		}
		if err != nil {
			return fmt.Errorf("trigger: %w", err)
		}
		c.data = et.Example
		if len(c.data) == 0 {
			c.data = json.RawMessage(`{}`)
		}
	}
	body := map[string]any{"type": c.eventType, "data": c.data}
	if c.reference != "" {
		body["external_reference"] = c.reference
	}
	if c.id != "" {
		body["id"] = c.id
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := c.remote.request(ctx, "POST", "/v1/tenants/"+url.PathEscape(tenant)+"/events", body, nil)
	if err != nil {
		return fmt.Errorf("trigger: %w", err)
	}
	defer resp.Body.Close()
	if err := answerError(resp); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusUnprocessableEntity && ae.field == "type" {
			return fmt.Errorf("trigger: the event type %q is not in the catalog; see the catalog with: curl -H 'Authorization: Bearer <key>' %s/v1/event-types",
				c.eventType, c.remote.url)
		}
		return fmt.Errorf("trigger: %w", err)
	}
	var ev struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil {
		return fmt.Errorf("trigger: read Aviso's answer: %w", err)
	}
	if resp.StatusCode == http.StatusOK {
		fmt.Fprintf(c.out, "Event %s had been published before: nothing new was sent\n", ev.ID)
		return nil
	}
	fmt.Fprintf(c.out, "Published %s (%s) for tenant %s\n", ev.ID, c.eventType, tenant)
	return nil
}
