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

// FixtureDir is the folder of the real records a Tyk gateway wrote, with
// their SHA256SUMS and a README of how they were made and what they total:
// tests/testdata/tyk-analytics, found from the test's working directory
// (any package of the repository). Without it the test fails.
func FixtureDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		d := filepath.Join(dir, "tests", "testdata", "tyk-analytics")
		if _, err := os.Stat(filepath.Join(d, "SHA256SUMS")); err == nil {
			return d
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("the Tyk analytics fixtures (tests/testdata/tyk-analytics) are not in this tree")
		}
		dir = parent
	}
}

// Fixtures returns the paths of the real records (FixtureDir), each
// checked against its SHA256SUMS line.
func Fixtures(tb testing.TB) []string {
	tb.Helper()
	dir := FixtureDir(tb)
	sums, err := os.Open(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		tb.Fatalf("the Tyk analytics fixtures: %v", err)
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
