package web

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(tb testing.TB, name, got string) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		tb.Errorf("%s differs from the golden file; run go test ./web -run %s -update and review the diff.\ngot:\n%s", name, tb.Name(), got)
	}
}

// TestChartGolden renders the 24 h chart of fixed data in both languages.
func TestChartGolden(t *testing.T) {
	h := &Handler{msgs: catalogs()}
	if err := h.parseTemplates(); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	var buckets []aviso.HistogramBucket
	for i := range 24 {
		buckets = append(buckets, aviso.HistogramBucket{Start: start.Add(time.Duration(i) * time.Hour),
			Succeeded: (i * 7) % 5, Failed: i % 4 / 3})
	}
	for _, lang := range languages() {
		t.Run(lang, func(t *testing.T) {
			var sb strings.Builder
			if err := h.pages[lang]["endpoints"].ExecuteTemplate(&sb, "chart", newChart("chart-tenant", chartWindows[0], buckets)); err != nil {
				t.Fatal(err)
			}
			golden(t, "chart_"+lang+".golden.html", sb.String())
		})
	}
}
