package gateway_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// release is one supported line of released Tyk gateways
// (testdata/released-gateways.tsv): the Go version it is built with and
// the versions at which its binary links the modules the plugin shares.
type release struct {
	name    string
	goVer   string
	modules map[string]string // module path → version
}

// releases reads the supported release lines, oldest first.
func releases(t *testing.T) []release {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "released-gateways.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var header []string
	var out []release
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if header == nil {
			header = cols
			if len(cols) < 3 || cols[0] != "releases" || cols[1] != "go" {
				t.Fatalf("released-gateways.tsv: header %q", line)
			}
			continue
		}
		if len(cols) != len(header) {
			t.Fatalf("released-gateways.tsv: row %q has %d columns, the header %d", line, len(cols), len(header))
		}
		r := release{name: cols[0], goVer: cols[1], modules: map[string]string{}}
		for i, mod := range header[2:] {
			r.modules[mod] = cols[2+i]
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		t.Fatal("released-gateways.tsv lists no release")
	}
	return out
}
