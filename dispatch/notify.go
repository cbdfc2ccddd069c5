package dispatch

import (
	"context"

	"github.com/aviso-dev/aviso"
)

// Notifier receives operational notices (service.Service implements it): here, the deliveries
// that ran out of retries, once their failure is recorded.
type Notifier interface {
	Notify(ctx context.Context, typ string, notices ...aviso.Notice)
}

// notifyFailed tells the Notifier of the deliveries a written batch failed for good.
func (d *Dispatcher) notifyFailed(ctx context.Context, batch []aviso.Completion) {
	if d.cfg.Notifier == nil {
		return
	}
	var failed []aviso.Notice
	for _, c := range batch {
		if c.Status != aviso.StatusFailed {
			continue
		}
		a := c.Attempt
		failed = append(failed, aviso.Notice{TenantID: a.TenantID, EndpointID: a.EndpointID, URL: a.URL,
			DeliveryID: a.DeliveryID, EventID: a.EventID, LastError: a.Error,
			LastResponseStatus: a.ResponseStatus, At: a.At})
	}
	if len(failed) > 0 {
		d.cfg.Notifier.Notify(ctx, aviso.EventDeliveryFailed, failed...)
	}
}
