package tests

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/keylens/keylens/tests/loadbench"
)

// TestLoadBenchmarkHarness runs the load benchmark's own code briefly, so
// that `make bench` cannot rot unnoticed. It asserts that every scenario
// measured requests without errors, never how fast they were.
func TestLoadBenchmarkHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: the harness run takes a few seconds")
	}
	bare := filepath.Join(t.TempDir(), "bare")
	if out, err := exec.Command("go", "build", "-o", bare, "./loadbench/bare").CombinedOutput(); err != nil {
		t.Fatalf("build bare: %v\n%s", err, out)
	}
	rep, err := loadbench.Run(context.Background(), loadbench.Options{
		KeylensBin: keylensBin, BareBin: bare, Developers: 500, Rounds: 1, Duration: 300 * time.Millisecond, Conns: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range rep.Scenarios {
		if s := rep.Samples[sc]; len(s) != 1 || s[0].Requests == 0 || s[0].Errors != 0 {
			t.Errorf("%s: %+v", sc, s)
		}
	}
	t.Logf("\n%s", rep)
}
