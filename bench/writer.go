package bench

import (
	"fmt"
	"time"
)

// writerUse is how loaded an SQLite node's single writer was over a stretch of a scenario (see
// sqlite.WriterStats): whether the writer had time to spare while a throughput was measured.
type writerUse struct {
	ok       bool    // false: the node's store cannot be looked into (not SQLite, not in this process)
	busy     float64 // share of the stretch the writer spent running transactions
	commit   float64 // share of the stretch spent committing them (part of busy)
	perGroup float64 // write calls per transaction
	perSec   float64 // transactions per second
}

// writerWindow starts watching n's writer; calling the function it returns ends the stretch.
func writerWindow(n *node) func() writerUse {
	if n.writer == nil {
		return func() writerUse { return writerUse{} }
	}
	start := time.Now()
	from, okFrom := n.writer()
	return func() writerUse {
		to, okTo := n.writer()
		wall := time.Since(start)
		groups := to.Groups - from.Groups
		if !okFrom || !okTo || wall <= 0 || groups == 0 {
			return writerUse{}
		}
		// A transaction that started before the stretch counts whole: the shares can exceed 1
		// by a transaction's length.
		return writerUse{ok: true,
			busy:     min(1, float64(to.Busy-from.Busy)/float64(wall)),
			commit:   min(1, float64(to.Commit-from.Commit)/float64(wall)),
			perGroup: float64(to.Writes-from.Writes) / float64(groups),
			perSec:   float64(groups) / wall.Seconds()}
	}
}

// note is w for a result's note: "" when not measured.
func (w writerUse) note() string {
	if !w.ok {
		return ""
	}
	return fmt.Sprintf("; SQLite writer busy %.0f%% of the time (committing %.0f%%), %.0f transactions/s of %.1f writes each",
		100*w.busy, 100*w.commit, w.perSec, w.perGroup)
}

// value is w's busy share for a result's WriterBusy: 0 when not measured.
func (w writerUse) value() float64 {
	if !w.ok {
		return 0
	}
	return w.busy
}

// medianUse is the median of each figure of ws, the rounds of one measurement; not measured if
// any round was not.
func medianUse(ws []writerUse) writerUse {
	if len(ws) == 0 {
		return writerUse{}
	}
	busy, commit := make([]float64, len(ws)), make([]float64, len(ws))
	per, perSec := make([]float64, len(ws)), make([]float64, len(ws))
	for i, w := range ws {
		if !w.ok {
			return writerUse{}
		}
		busy[i], commit[i], per[i], perSec[i] = w.busy, w.commit, w.perGroup, w.perSec
	}
	return writerUse{ok: true, busy: median(busy), commit: median(commit), perGroup: median(per), perSec: median(perSec)}
}
