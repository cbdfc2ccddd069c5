package web

import (
	"strconv"
	"time"

	"github.com/aviso-dev/aviso"
)

// chart is a stacked bar chart of successes (bottom, green) and failures (top, red) per bucket,
// with a labelled y axis (attempts: 0, half and the maximum) and x axis (time, UTC), laid out
// here so that the template only prints numbers into an inline SVG.
type chart struct {
	ID                string // unique on the page: the SVG's title and description ids derive from it
	Width, Height     int
	Left, Base, Top   int    // plot area: x of the y axis, y of the x axis, y of the maximum
	Max               int    // the y axis' top value (the tallest bar's total)
	Succeeded, Failed int    // totals, for the caption and the text alternative
	Window            string // message key of the x axis title
	Name              string // the window's name, for its description
	Bars              []bar
	XTicks            []tick
	YTicks            []tick
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

// window is a chart's time span: its bucket size, how often the x axis is labelled and how.
type window struct {
	Name   string // "24h" or "7d", the ?range= value
	Span   time.Duration
	Bucket time.Duration
	Every  int    // a tick label every Every buckets
	Layout string // the tick label's time layout
	Title  string // message key of the x axis title
}

// The endpoint page's windows; the first is the default. The tenant's page shows the first.
var chartWindows = [...]window{
	{Name: "24h", Span: 24 * time.Hour, Bucket: time.Hour, Every: 6, Layout: "15:04", Title: "axis_hour"},
	{Name: "7d", Span: 7 * 24 * time.Hour, Bucket: 6 * time.Hour, Every: 4, Layout: "Jan 2", Title: "axis_day"},
}

// windowNamed returns the window called name, or the default.
func windowNamed(name string) window {
	for _, w := range chartWindows {
		if w.Name == name {
			return w
		}
	}
	return chartWindows[0]
}

// bounds returns the start and end of the window's buckets, the last of which holds now.
func (w window) bounds(now time.Time) (since, until time.Time) {
	until = now.UTC().Truncate(w.Bucket).Add(w.Bucket)
	return until.Add(-w.Span), until
}

// Chart geometry, in viewBox units.
const (
	chartW, chartH           = 560, 200
	chartLeft, chartRight    = 36, 8
	chartBase, chartTop      = 156, 12
	chartTickY, chartXTitleY = 172, 194
)

// newChart lays out buckets (oldest first) of window w.
func newChart(id string, w window, buckets []aviso.HistogramBucket) chart {
	c := chart{ID: id, Width: chartW, Height: chartH, Left: chartLeft, Base: chartBase, Top: chartTop, Window: w.Title, Name: w.Name}
	for _, b := range buckets {
		c.Max = max(c.Max, b.Succeeded+b.Failed)
		c.Succeeded += b.Succeeded
		c.Failed += b.Failed
	}
	c.YTicks = append(c.YTicks, tick{X: chartLeft - 4, Y: chartBase, Label: "0"})
	if c.Max > 0 {
		if half := (c.Max + 1) / 2; half < c.Max {
			c.YTicks = append(c.YTicks, tick{X: chartLeft - 4, Y: chartBase - (chartBase-chartTop)*half/c.Max, Label: strconv.Itoa(half)})
		}
		c.YTicks = append(c.YTicks, tick{X: chartLeft - 4, Y: chartTop, Label: strconv.Itoa(c.Max)})
	}
	if len(buckets) == 0 {
		return c
	}
	plot := chartW - chartLeft - chartRight
	slot := plot / len(buckets)
	scale := 0.0
	if c.Max > 0 {
		scale = float64(chartBase-chartTop) / float64(c.Max)
	}
	for i, b := range buckets {
		okH := int(float64(b.Succeeded)*scale + 0.5)
		badH := int(float64(b.Succeeded+b.Failed)*scale+0.5) - okH // stacks sum exactly
		x := chartLeft + i*slot
		c.Bars = append(c.Bars, bar{
			X: x + 1, W: max(slot-2, 1),
			OkY: chartBase - okH, OkH: okH,
			BadY: chartBase - okH - badH, BadH: badH,
			Label:     b.Start.UTC().Format("Jan 2 15:04") + " UTC",
			Succeeded: b.Succeeded, Failed: b.Failed,
		})
		if i%w.Every == 0 {
			c.XTicks = append(c.XTicks, tick{X: x, Y: chartTickY, Label: b.Start.UTC().Format(w.Layout)})
		}
	}
	return c
}

// histogramWindow returns the start and end of the 24 hourly buckets ending with the current hour.
func histogramWindow(now time.Time) (since, until time.Time) { return chartWindows[0].bounds(now) }
