package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Attempt errors are recorded in English, short and in the receiver's terms (dispatch/attempt.go
// writes them). The pages say them again in the page's language, as a sentence with what to do;
// the recorded text stays beside it, for support. An error this table does not know is shown as
// recorded.

// attemptProblem is one kind of failed attempt: how to recognise its recorded error, and its
// message key.
type attemptProblem struct {
	prefix string
	key    string
}

var attemptProblems = [...]attemptProblem{
	{"connection refused", "problem_refused"},
	{"connection reset", "problem_reset"},
	{"timeout after", "problem_timeout"},
	{"DNS lookup", "problem_dns"},
	{"TLS certificate", "problem_tls"},
	{"connection closed before", "problem_closed"},
	{"refused: ", "problem_private"},
	{"redirect ", "problem_redirect"},
	{"endpoint disabled", "problem_disabled"},
	{"cancelled", "problem_cancelled"},
	{"invalid URL", "problem_url"},
	{"network error", "problem_network"},
}

// problemKey returns the message key of a recorded attempt error, or "".
func problemKey(recorded string) string {
	for _, p := range attemptProblems {
		if strings.HasPrefix(recorded, p.prefix) {
			return p.key
		}
	}
	return ""
}

// outcome says in words what an attempt (or a delivery's last attempt) got: the response status
// or the error.
func (t translator) outcome(status int, recorded string) string {
	if status != 0 && recorded == "" {
		if status >= 200 && status < 300 {
			return fmt.Sprintf(t.T("outcome_ok"), status)
		}
		return fmt.Sprintf(t.T("outcome_status"), status, http.StatusText(status))
	}
	if recorded == "" {
		return ""
	}
	if k := problemKey(recorded); k != "" {
		return t.T(k)
	}
	return recorded
}

// relTime is a time shown relative to now, with the exact time on hover (title) and for
// machines (datetime).
type relTime struct {
	Rel, Exact, ISO string
}

// rel describes t relative to now: "just now", "5 min ago", "in 3 h".
func (t translator) rel(now, at time.Time) relTime {
	r := relTime{Exact: fmtTime(at), ISO: at.UTC().Format(time.RFC3339)}
	d := now.Sub(at)
	future := d < 0
	if future {
		d = -d
	}
	var n int
	var unit string
	switch {
	case d < 45*time.Second:
		r.Rel = t.T("rel_now")
		return r
	case d < 90*time.Minute:
		n, unit = int((d+30*time.Second)/time.Minute), t.T("unit_min")
	case d < 36*time.Hour:
		n, unit = int((d+30*time.Minute)/time.Hour), t.T("unit_h")
	default:
		n, unit = int((d+12*time.Hour)/(24*time.Hour)), t.T("unit_d")
	}
	key := "rel_ago"
	if future {
		key = "rel_in"
	}
	r.Rel = fmt.Sprintf(t.T(key), fmt.Sprintf("%d %s", n, unit))
	return r
}
