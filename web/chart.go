package web

import (
	"time"

	"github.com/aviso-dev/aviso"
)

// chart is a stacked bar chart of successes (bottom, green) and failures (top, red) per bucket,
// laid out here so the template only prints numbers into an inline SVG.
type chart struct {
	Width, Height, Base int
	Max                 int // the tallest bar's total
	Succeeded, Failed   int // totals, for the caption and the text alternative
	Bars                []bar
	Ticks               []tick
}

type bar struct {
	X, W                 int
	OkY, OkH, BadY, BadH int
	Label                string
	Succeeded, Failed    int
}

type tick struct {
	X, Y  int
	Label string
}

// newChart lays out buckets (oldest first) in a 480×160 viewBox with hour labels every 6 bars.
func newChart(buckets []aviso.HistogramBucket) chart {
	const width, height, base, top = 480, 160, 140, 14
	c := chart{Width: width, Height: height, Base: base}
	for _, b := range buckets {
		c.Max = max(c.Max, b.Succeeded+b.Failed)
		c.Succeeded += b.Succeeded
		c.Failed += b.Failed
	}
	if len(buckets) == 0 {
		return c
	}
	slot := width / len(buckets)
	scale := 0.0
	if c.Max > 0 {
		scale = float64(base-top) / float64(c.Max)
	}
	for i, b := range buckets {
		okH := int(float64(b.Succeeded)*scale + 0.5)
		badH := int(float64(b.Succeeded+b.Failed)*scale+0.5) - okH // stacks sum exactly
		x := i * slot
		c.Bars = append(c.Bars, bar{
			X: x + 1, W: max(slot-2, 1),
			OkY: base - okH, OkH: okH,
			BadY: base - okH - badH, BadH: badH,
			Label:     b.Start.UTC().Format("15:04") + " UTC",
			Succeeded: b.Succeeded, Failed: b.Failed,
		})
		if i%6 == 0 {
			c.Ticks = append(c.Ticks, tick{X: x, Y: height - 4, Label: b.Start.UTC().Format("15:04")})
		}
	}
	return c
}

// histogramWindow returns the start of the 24 hourly buckets ending with the current hour.
func histogramWindow(now time.Time) (since, until time.Time) {
	until = now.UTC().Truncate(time.Hour).Add(time.Hour)
	return until.Add(-24 * time.Hour), until
}
