package webhook

import (
	"testing"
	"time"

	"github.com/aviso-dev/aviso"
)

func BenchmarkBuild(b *testing.B) {
	ev := testEvent(b, "invoice.created")
	for _, f := range aviso.Formats() {
		b.Run(string(f), func(b *testing.B) {
			ep := testEndpoint(b, f, true)
			for b.Loop() {
				if _, err := Build(ep, ev, testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	req, err := Build(testEndpoint(b, aviso.FormatStandard, true), testEvent(b, "invoice.created"), testNow)
	if err != nil {
		b.Fatal(err)
	}
	v := Verifier{Secrets: []string{testOldSecret}, Now: func() time.Time { return testNow }}
	for b.Loop() {
		if err := v.Verify(req.Header, req.Body); err != nil {
			b.Fatal(err)
		}
	}
}
