package dispatch

import (
	"context"

	"github.com/aviso-dev/aviso"
)

// Notifier receives operational notices (service.Service implements it): the endpoints the
// engine disabled and the deliveries that ran out of retries, once the batch that did so is
// recorded.
type Notifier interface {
	Notify(ctx context.Context, typ string, notices ...aviso.Notice)
}

// notify tells the Notifier what a recorded batch did: the endpoints it disabled (endpoint.
// disabled, with the attempt that did it) and the deliveries it failed for good (delivery.failed).
func (d *Dispatcher) notify(ctx context.Context, batch []aviso.Completion, disabled []string) {
	if d.cfg.Notifier == nil {
		return
	}
	var failed, off []aviso.Notice
	last := map[string]aviso.Completion{} // the endpoint's last failure in the batch, or its 410
	for _, c := range batch {
		a := c.Attempt
		if prev, ok := last[a.EndpointID]; c.Status != aviso.StatusSucceeded && (!ok || prev.Disable == "" || c.Disable != "") {
			last[a.EndpointID] = c // a 410 that disabled the endpoint names the reason
		}
		if c.Status == aviso.StatusFailed {
			failed = append(failed, aviso.Notice{TenantID: a.TenantID, EndpointID: a.EndpointID, URL: a.URL,
				DeliveryID: a.DeliveryID, EventID: a.EventID, LastError: a.Error,
				LastResponseStatus: a.ResponseStatus, At: a.At})
		}
	}
	for _, id := range disabled {
		c, ok := last[id]
		if !ok {
			continue
		}
		reason := aviso.DisabledConsecutiveFailed
		if c.Disable != "" {
			reason = c.Disable
		}
		a := c.Attempt
		off = append(off, aviso.Notice{TenantID: a.TenantID, EndpointID: id, URL: a.URL, Reason: reason,
			LastError: a.Error, LastResponseStatus: a.ResponseStatus, At: a.At})
	}
	if len(off) > 0 {
		d.cfg.Notifier.Notify(ctx, aviso.EventEndpointDisabled, off...)
	}
	if len(failed) > 0 {
		d.cfg.Notifier.Notify(ctx, aviso.EventDeliveryFailed, failed...)
	}
}
