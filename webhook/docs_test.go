package webhook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aviso-dev/aviso"
)

// TestDocsShowRealRequests keeps docs/formats/<format>.md in step with the golden files: each page
// shows a golden request verbatim.
func TestDocsShowRealRequests(t *testing.T) {
	pages := map[aviso.Format]string{aviso.FormatStandard: "invoice.created", aviso.FormatAlegra: "invoice.created",
		aviso.FormatFacturaScripts: "invoice.paid", aviso.FormatTusFacturas: "invoice.created"}
	for f, typ := range pages {
		t.Run(string(f), func(t *testing.T) {
			golden, err := os.ReadFile(filepath.Join("testdata", "golden", string(f), typ+".http"))
			if err != nil {
				t.Fatal(err)
			}
			page, err := os.ReadFile(filepath.Join("..", "docs", "formats", string(f)+".md"))
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.ReplaceAll(string(golden), "\r\n", "\n"); !strings.Contains(string(page), want) {
				t.Errorf("docs/formats/%s.md does not show testdata/golden/%s/%s.http; paste it again", f, f, typ)
			}
		})
	}
}
