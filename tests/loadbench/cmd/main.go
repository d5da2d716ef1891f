// Command loadbench runs the sidecar load benchmark (make bench).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/keylens/keylens/tests/loadbench"
)

func main() {
	var o loadbench.Options
	flag.IntVar(&o.Developers, "developers", 100000, "developers, one key each, for the spread scenario")
	flag.IntVar(&o.Rounds, "rounds", 5, "alternations of every scenario")
	flag.DurationVar(&o.Duration, "duration", 5*time.Second, "length of each scenario in each round")
	flag.IntVar(&o.Conns, "conns", 32, "concurrent connections")
	flag.BoolVar(&o.Pin, "pin", false, "run the load generator on CPU 0 and the servers on CPU 1 (taskset), so that they do not trade cores")
	flag.Parse()
	if o.Pin && os.Getenv("LOADBENCH_PINNED") == "" {
		// Re-run this program on CPU 0; the servers are started on CPU 1.
		self, err := os.Executable()
		if err != nil {
			fail(err)
		}
		cmd := exec.Command("taskset", append([]string{"-c", "0", self}, os.Args[1:]...)...)
		cmd.Env = append(os.Environ(), "LOADBENCH_PINNED=1")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fail(err)
		}
		return
	}
	dir, err := os.MkdirTemp("", "keylens-loadbench-bin-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	if o.KeylensBin, o.BareBin, err = loadbench.Build(dir); err != nil {
		fail(err)
	}
	o.Log = os.Stderr
	rep, err := loadbench.Run(context.Background(), o)
	if err != nil {
		fail(err)
	}
	fmt.Print(rep)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "loadbench:", err)
	os.Exit(1)
}
