// Package filter compiles and runs endpoint payload filters: small, safe boolean expressions over
// an event, in the expr language (github.com/expr-lang/expr), such as
//
//	data.total > 1000 && data.currency == "EUR"
//	external_reference startsWith "FAC-A"
//	type in ["invoice.created", "invoice.paid"] && data.client.id == "123"
//
// An expression sees the event as the API shows it: id, type, external_reference, created_at (an
// RFC 3339 string) and data (the event's JSON data, objects as maps). It must be a boolean
// expression; it is type-checked when compiled, so a typo in an operator or a comparison of a
// string with a number is refused with its line and column. Its cost is bounded: at most
// MaxLen characters and MaxNodes syntax nodes when compiled, expr's memory budget when run, and
// no function that reaches outside the event. A filter that fails at run time (say, a number
// compared with a field the event does not have) does not match.
package filter

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/aviso-dev/aviso"
)

// Limits of a filter.
const (
	MaxLen   = 1000 // characters of source
	MaxNodes = 500  // syntax nodes
)

// Program is a compiled filter. It is safe for concurrent use.
type Program struct {
	p *vm.Program
}

// Error is a filter that does not compile: Line and Column (1-based; 0 when unknown) say where.
type Error struct {
	Line, Column int
	Message      string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.Message
	}
	return fmt.Sprintf("%s (line %d, column %d)", e.Message, e.Line, e.Column)
}

// env is what an expression sees; its shape types the compilation.
func env(ev *aviso.Event, data any) map[string]any {
	m := map[string]any{"id": "", "type": "", "external_reference": "", "created_at": "", "data": data}
	if ev != nil {
		m["id"], m["type"], m["external_reference"] = ev.ID, ev.Type, ev.ExternalReference
		m["created_at"] = ev.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	return m
}

// Compile checks and compiles src. A failure is an *Error.
func Compile(src string) (*Program, error) {
	if len(src) > MaxLen {
		return nil, &Error{Message: fmt.Sprintf("is %d characters; a filter holds at most %d", len(src), MaxLen)}
	}
	p, err := expr.Compile(src, expr.Env(env(nil, map[string]any{})), expr.AsBool(), expr.MaxNodes(MaxNodes))
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, &Error{Line: fe.Line, Column: fe.Column + 1, Message: fe.Message}
		}
		return nil, &Error{Message: err.Error()}
	}
	return &Program{p: p}, nil
}

// Match runs the filter on ev, whose data is decoded once by the caller (Decode) and shared by
// the filters of one event. An error at run time is returned with false: it does not match.
func (p *Program) Match(ev *aviso.Event, data any) (bool, error) {
	out, err := expr.Run(p.p, env(ev, data))
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

// Decode turns an event's JSON data into what filters see as data: objects as maps, numbers as
// float64. Empty data is nil.
func Decode(data json.RawMessage) (any, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return v, nil
}
