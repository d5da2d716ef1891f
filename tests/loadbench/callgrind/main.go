// Command callgrind counts the instructions per /auth request of the
// sidecar against a bare fasthttp handler, under valgrind's callgrind
// (make callgrind). See docs/benchmarks.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/keylens/keylens/tests/loadbench"
)

func main() {
	var o loadbench.CallgrindOptions
	flag.StringVar(&o.Command, "command", "serve", `keylens command to measure: "serve" or "sidecar"`)
	flag.IntVar(&o.Developers, "developers", 100000, "developers, one key each, all cached before measuring")
	flag.IntVar(&o.Requests, "requests", 20000, "measured requests per scenario")
	flag.IntVar(&o.Warmup, "warmup", 3000, "requests with instrumentation on before the counters are zeroed")
	keep := flag.String("out", "", "keep the callgrind dumps (for callgrind_annotate) and the store in this directory")
	flag.Parse()
	if o.Command != "serve" && o.Command != "sidecar" {
		fail(fmt.Errorf(`-command must be "serve" or "sidecar"`))
	}
	dir := *keep
	if dir == "" {
		d, err := os.MkdirTemp("", "keylens-callgrind-")
		if err != nil {
			fail(err)
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		fail(err)
	}
	o.Dir = dir
	var err error
	if o.KeylensBin, o.BareBin, err = loadbench.Build(dir); err != nil {
		fail(err)
	}
	o.Log = os.Stderr
	load := func() string {
		b, _ := os.ReadFile("/proc/loadavg")
		return strings.Join(strings.Fields(string(b))[:3], " ")
	}
	before := load()
	res, err := loadbench.Callgrind(context.Background(), o)
	if err != nil {
		fail(err)
	}
	fmt.Printf("keylens %s, %d developers cached, %d requests per case over one keep-alive connection\n",
		o.Command, o.Developers, o.Requests)
	fmt.Printf("load average before: %s, after: %s\n\n", before, load())
	fmt.Print(loadbench.CallgrindTable(res))
	fmt.Println("\nbackground: the process's instructions while idle for as long as the measured window, per request of it")
	for _, c := range res {
		if c.Keylens.GCWindows > 0 {
			fmt.Printf("%s: %d window(s) with a garbage collection measured again\n", c.Scenario, c.Keylens.GCWindows)
		}
	}
	if *keep != "" {
		fmt.Printf("\ndumps in %s (bare.callgrind.N, keylens.callgrind.N: each case's window (one more for each window measured again), then its idle window):\n"+
			"  callgrind_annotate --inclusive=yes %s/keylens.callgrind.1 | head -60\n", dir, dir)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "callgrind:", err)
	os.Exit(1)
}
