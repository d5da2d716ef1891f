package tyktest

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Fixtures returns the paths of the real records in dir (a path to
// shared/fixtures/tyk-analytics, which lies beside the repository), each
// checked against its SHA256SUMS line. Without the folder the test is
// skipped, except under CI=true, where it fails.
func Fixtures(tb testing.TB, dir string) []string {
	tb.Helper()
	sums, err := os.Open(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("the Tyk analytics fixtures: %v", err)
		}
		tb.Skipf("the Tyk analytics fixtures are not beside the repository: %v", err)
	}
	defer sums.Close()
	var files []string
	sc := bufio.NewScanner(sums)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			continue
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != sum {
			tb.Fatalf("%s does not match SHA256SUMS", name)
		}
		files = append(files, path)
	}
	if len(files) == 0 {
		tb.Fatalf("no fixtures listed in %s/SHA256SUMS", dir)
	}
	return files
}
