package webhook

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the package importable by receivers without the server: it may depend
// on the standard library and the aviso vocabulary only.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/aviso-dev/aviso" && p != "github.com/aviso-dev/aviso/webhook" {
			t.Errorf("webhook depends on %s; it must use only the standard library and package aviso", p)
		}
	}
}
