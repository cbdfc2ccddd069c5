package server

import (
	"context"

	"github.com/aviso-dev/aviso"
	"github.com/aviso-dev/aviso/dispatch"
	"github.com/aviso-dev/aviso/internal/requestid"
)

// observers runs several dispatch.Observers on each attempt, in order: each gets the context
// the previous one returned.
type observers []dispatch.Observer

func (os observers) Attempt(ctx context.Context, c *aviso.Claim) (context.Context, func(*aviso.Attempt, aviso.Completion)) {
	dones := make([]func(*aviso.Attempt, aviso.Completion), 0, len(os))
	for _, o := range os {
		var done func(*aviso.Attempt, aviso.Completion)
		ctx, done = o.Attempt(ctx, c)
		if done != nil {
			dones = append(dones, done)
		}
	}
	return ctx, func(a *aviso.Attempt, comp aviso.Completion) {
		for _, done := range dones {
			done(a, comp)
		}
	}
}

// requestIDs puts the request id of an attempt's publish in its context, so that the engine's
// log lines about the attempt carry it (requestid.Handler).
type requestIDs struct{}

func (requestIDs) Attempt(ctx context.Context, c *aviso.Claim) (context.Context, func(*aviso.Attempt, aviso.Completion)) {
	return requestid.NewContext(ctx, c.Event.RequestID), nil
}
