// Package requestid gives every HTTP request an id and carries it into the logs. Middleware
// takes the caller's X-Request-Id when it is a sensible token (1–128 printable ASCII characters
// without spaces) or mints one ("req_" and 20 random hex digits), returns it in the response's
// X-Request-Id and puts it in the request's context; Handler wraps a slog.Handler so that every
// record logged with such a context carries it as request_id. The id of a publish is stored on
// its event (aviso.Event.RequestID), so the log lines of the event's attempts, made later and
// perhaps on another node, carry it too (NewContext, in the delivery engine's observer).
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
)

// Header is the request and response header that carries the id.
const Header = "X-Request-Id"

type ctxKey struct{}

// NewContext returns ctx carrying id; an empty id returns ctx.
func NewContext(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the id ctx carries, or "".
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// New mints an id.
func New() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "req_" + hex.EncodeToString(b[:])
}

// Valid reports whether a caller's id is kept: 1–128 printable ASCII characters, no spaces.
func Valid(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// Middleware gives each request an id (see the package doc).
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(Header)
		if !Valid(id) {
			id = New()
		}
		w.Header().Set(Header, id)
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

// Handler returns h adding request_id to every record logged with a context that carries one.
func Handler(h slog.Handler) slog.Handler {
	if _, ok := h.(handler); ok {
		return h
	}
	return handler{h}
}

type handler struct{ slog.Handler }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	if id := FromContext(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h handler) WithAttrs(as []slog.Attr) slog.Handler { return handler{h.Handler.WithAttrs(as)} }

func (h handler) WithGroup(name string) slog.Handler { return handler{h.Handler.WithGroup(name)} }
