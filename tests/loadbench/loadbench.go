// Package loadbench measures the sidecar's /auth under load against a bare
// fasthttp handler, alternately in the same run with the same load
// generator, and reports medians and ratios. It is a benchmark, not a test:
// nothing here asserts a speed.
package loadbench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/sqlstore"
)

// Options configure Run.
type Options struct {
	KeylensBin, BareBin string        // built binaries
	Developers          int           // developers (one key each) for the spread scenario
	Rounds              int           // alternations of every scenario
	Duration            time.Duration // per scenario per round
	Conns               int           // concurrent connections of the load generator
	Pin                 bool          // start the servers on CPU 1 (the caller runs on CPU 0)
	Log                 io.Writer     // progress; nil for none
}

// Sample is one scenario's measurement in one round.
type Sample struct {
	RPS              float64
	P50, P99         time.Duration
	CPUPerRequest    time.Duration // server user+system CPU / requests
	Requests, Errors int64
}

// Report holds each scenario's samples and medians.
type Report struct {
	Options   Options
	Scenarios []string
	Samples   map[string][]Sample
}

// Median returns the median of each measure over a scenario's rounds.
func (r *Report) Median(scenario string) Sample {
	s := r.Samples[scenario]
	med := func(get func(Sample) float64) float64 {
		v := make([]float64, len(s))
		for i := range s {
			v[i] = get(s[i])
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return Sample{
		RPS:           med(func(x Sample) float64 { return x.RPS }),
		P50:           time.Duration(med(func(x Sample) float64 { return float64(x.P50) })),
		P99:           time.Duration(med(func(x Sample) float64 { return float64(x.P99) })),
		CPUPerRequest: time.Duration(med(func(x Sample) float64 { return float64(x.CPUPerRequest) })),
	}
}

// String renders the report as a table with ratios against bare.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d rounds x %v per scenario, %d connections, %d developers (median of rounds)\n",
		r.Options.Rounds, r.Options.Duration, r.Options.Conns, r.Options.Developers)
	fmt.Fprintf(&b, "%-22s %12s %10s %10s %12s %10s %10s %14s\n", "scenario", "req/s", "p50", "p99", "cpu/req", "vs bare", "paired", "paired IQR")
	for _, sc := range r.Scenarios {
		m := r.Median(sc)
		// The twin: "sidecar, X" is compared with "bare, X".
		twin := "bare" + sc[strings.IndexByte(sc, ','):]
		bare := r.Median(twin)
		q1, med, q3 := r.PairedQuartiles(sc, twin)
		fmt.Fprintf(&b, "%-22s %12.0f %10v %10v %12v %10.3f %10.3f %14s\n", sc, m.RPS, m.P50.Round(time.Microsecond),
			m.P99.Round(time.Microsecond), m.CPUPerRequest.Round(100*time.Nanosecond), m.RPS/bare.RPS, med,
			fmt.Sprintf("%.3f-%.3f", q1, q3))
	}
	b.WriteString("vs bare: ratio of the median req/s; paired: median of each round's ratio to its twin, measured\n" +
		"moments apart (in ABBA order), which cancels most of the machine's drift between rounds;\n" +
		"paired IQR: the middle half of those per-round ratios, the spread one round's answer has\n")
	return b.String()
}

// PairedQuartiles are the quartiles over rounds of scenario's req/s
// divided by its twin's in the same round: the median is the paired ratio,
// the others show how far one round's answer strays.
func (r *Report) PairedQuartiles(scenario, twin string) (q1, median, q3 float64) {
	s, t := r.Samples[scenario], r.Samples[twin]
	var v []float64
	for i := range min(len(s), len(t)) {
		if t[i].RPS > 0 {
			v = append(v, s[i].RPS/t[i].RPS)
		}
	}
	if len(v) == 0 {
		return 0, 0, 0
	}
	slices.Sort(v)
	return v[len(v)/4], v[len(v)/2], v[len(v)*3/4]
}

// Run seeds a store, starts the sidecar and the bare server, and measures.
func Run(ctx context.Context, o Options) (*Report, error) {
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	dir, err := os.MkdirTemp("", "keylens-loadbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	store := "sqlite:" + filepath.Join(dir, "k.db")
	logf("seeding %d developers", o.Developers)
	keys, err := Seed(ctx, store, o.Developers)
	if err != nil {
		return nil, err
	}

	ready := filepath.Join(dir, "ready.json")
	sidecarAddr, stopSidecar, sidecarPID, err := StartProcess(ctx, o.Pin, nil, o.KeylensBin, []string{"sidecar", "--store", store,
		"--sidecar-addr", "127.0.0.1:0", "--log-format", "json", "--cache-size", strconv.Itoa(o.Developers + 1000),
		"--ready-file", ready},
		func(string) string { return ReadySidecar(ready) })
	if err != nil {
		return nil, fmt.Errorf("sidecar: %w", err)
	}
	defer stopSidecar()
	bareAddr, stopBare, barePID, err := StartProcess(ctx, o.Pin, nil, o.BareBin, nil, func(line string) string { return strings.TrimSpace(line) })
	if err != nil {
		return nil, fmt.Errorf("bare: %w", err)
	}
	defer stopBare()

	// Each sidecar scenario has a bare twin driven the same way (same key
	// selection, so the same load-generator work on the shared cores): the
	// ratio compares servers, not client loops.
	type scenario struct {
		name, addr, path string
		pid              int
		key              func(*rand.Rand) string
	}
	hot := keys[0]
	hotKey := func(*rand.Rand) string { return hot }
	spread := func(r *rand.Rand) string { return keys[r.IntN(len(keys))] }
	scenarios := []scenario{
		{"bare, hot key", bareAddr, "/auth", barePID, hotKey},
		{"sidecar, hot key", sidecarAddr, "/auth", sidecarPID, hotKey},
		{"bare, spread keys", bareAddr, "/auth", barePID, spread},
		{"sidecar, spread keys", sidecarAddr, "/auth", sidecarPID, spread},
	}
	// Warm the cache with every key once, so that the spread scenario
	// measures a warm sidecar, as in production after start-up.
	logf("warming the sidecar cache with %d keys", len(keys))
	if err := warm(sidecarAddr, keys, o.Conns); err != nil {
		return nil, err
	}
	rep := &Report{Options: o, Samples: map[string][]Sample{}}
	for _, sc := range scenarios {
		rep.Scenarios = append(rep.Scenarios, sc.name)
	}
	for round := 1; round <= o.Rounds; round++ {
		// Scenarios come in (bare, sidecar) pairs. Even rounds run each pair
		// the other way round (ABBA), so that a machine speeding up or
		// slowing down across a pair favours neither side.
		order := slices.Clone(scenarios)
		if round%2 == 0 {
			for i := 0; i+1 < len(order); i += 2 {
				order[i], order[i+1] = order[i+1], order[i]
			}
		}
		for _, sc := range order {
			s, err := measure(sc.addr, sc.path, sc.pid, sc.key, o.Duration, o.Conns)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sc.name, err)
			}
			if s.Errors > 0 {
				return nil, fmt.Errorf("%s: %d of %d requests failed", sc.name, s.Errors, s.Requests)
			}
			rep.Samples[sc.name] = append(rep.Samples[sc.name], s)
			logf("round %d %-22s %9.0f req/s p50 %v p99 %v cpu/req %v", round, sc.name, s.RPS,
				s.P50.Round(time.Microsecond), s.P99.Round(time.Microsecond), s.CPUPerRequest.Round(100*time.Nanosecond))
		}
	}
	return rep, nil
}

// Seed stores n developers with one key each (two custom fields, one
// policy) in store and returns their raw keys.
func Seed(ctx context.Context, store string, n int) ([]string, error) {
	db, err := sqlstore.Open(ctx, store)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	keys := make([]string, 0, n)
	for start := 0; start < n; start += 10000 {
		devs := make([]*keylens.Developer, 0, 10000)
		for i := start; i < min(start+10000, n); i++ {
			raw := keylens.KeyFor("5e9d9544a1dcd60001d0ed20", fmt.Sprintf("%032x", i), "murmur64")
			keys = append(keys, raw)
			devs = append(devs, &keylens.Developer{Email: fmt.Sprintf("dev%06d@example.com", i),
				Fields: map[string]string{"Company": fmt.Sprintf("Company %d", i), "Plan": "gold"},
				Keys:   map[string][]string{keylens.HashKey(raw): {"pol-token"}}})
		}
		if err := db.CreateDevelopers(ctx, devs); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// StartProcess starts bin with env (nil: this process's) and waits for
// addrOf to find its address in a line of its output (stdout or stderr).
func StartProcess(ctx context.Context, pin bool, env []string, bin string, args []string, addrOf func(string) string) (string, func(), int, error) {
	if pin {
		args = append([]string{"-c", "1", bin}, args...)
		bin = "taskset"
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return "", nil, 0, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait(); pw.Close() }
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if a := addrOf(sc.Text()); a != "" {
				select {
				case found <- a:
				default:
				}
			}
		}
	}()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case a := <-found:
			return a, stop, cmd.Process.Pid, nil
		case <-deadline:
			stop()
			return "", nil, 0, fmt.Errorf("%s did not report its address", bin)
		case <-time.After(10 * time.Millisecond):
			if a := addrOf(""); a != "" { // a ready file, not a line
				return a, stop, cmd.Process.Pid, nil
			}
		}
	}
}

// ReadySidecar is the sidecar's host:port once keylens has written its
// ready file; "" before.
func ReadySidecar(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var urls map[string]string
	if json.Unmarshal(b, &urls) != nil {
		return ""
	}
	return strings.TrimPrefix(urls["sidecar"], "http://")
}

func warm(addr string, keys []string, conns int) error {
	c := &fasthttp.HostClient{Addr: addr, MaxConns: conns}
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(res)
			for {
				i := next.Add(1) - 1
				if i >= int64(len(keys)) {
					return
				}
				req.SetRequestURI("http://" + addr + "/auth")
				req.Header.Set("Authorization", keys[i])
				if err := c.Do(req, res); err != nil || res.StatusCode() != 200 {
					firstErr.CompareAndSwap(nil, fmt.Errorf("warming key %d: %v status %d", i, err, res.StatusCode()))
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	return nil
}

// measure runs a closed loop of conns connections for d against addr and
// reads the server's CPU time from /proc before and after.
func measure(addr, path string, pid int, key func(*rand.Rand) string, d time.Duration, conns int) (Sample, error) {
	c := &fasthttp.HostClient{Addr: addr, MaxConns: conns, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	cpuBefore, err := processCPU(pid)
	if err != nil {
		return Sample{}, err
	}
	var requests, errors atomic.Int64
	lats := make([][]time.Duration, conns)
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(res)
			req.SetRequestURI("http://" + addr + path)
			local := make([]time.Duration, 0, 1<<16)
			for time.Now().Before(deadline) {
				req.Header.Set("Authorization", key(rng))
				t0 := time.Now()
				err := c.Do(req, res)
				local = append(local, time.Since(t0))
				requests.Add(1)
				if err != nil || res.StatusCode() != 200 {
					errors.Add(1)
				}
			}
			lats[w] = local
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpuAfter, err := processCPU(pid)
	if err != nil {
		return Sample{}, err
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	n := requests.Load()
	s := Sample{RPS: float64(n) / elapsed.Seconds(), Requests: n, Errors: errors.Load()}
	if len(all) > 0 {
		s.P50, s.P99 = all[len(all)/2], all[len(all)*99/100]
	}
	if n > 0 {
		s.CPUPerRequest = (cpuAfter - cpuBefore) / time.Duration(n)
	}
	return s, nil
}

// processCPU returns a process's user+system CPU time from /proc.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is parenthesised and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// Build builds keylens and the bare fasthttp handler into dir, with
// symbols (no -s -w, so that callgrind_annotate names functions), from
// the repository root, and returns their paths. The go tool's output goes
// to stderr.
func Build(dir string) (keylensBin, bareBin string, err error) {
	keylensBin, bareBin = filepath.Join(dir, "keylens"), filepath.Join(dir, "bare")
	for bin, pkg := range map[string]string{keylensBin: "./cmd/keylens", bareBin: "./tests/loadbench/bare"} {
		build := exec.Command("go", "build", "-o", bin, pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return "", "", fmt.Errorf("build %s: %w", pkg, err)
		}
	}
	return keylensBin, bareBin, nil
}
