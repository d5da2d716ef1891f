package loadbench

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// CallgrindOptions configure Callgrind.
type CallgrindOptions struct {
	KeylensBin, BareBin string // built with symbols (no -s -w)
	// Command is the keylens command measured: "serve" (portal API and
	// sidecar in one process, as most deployments run it) or "sidecar".
	Command    string
	Developers int // seeded developers, one key each, all cached before measuring
	Requests   int // measured requests per scenario
	Warmup     int // requests with instrumentation on before the counters are zeroed
	Dir        string
	Log        io.Writer // progress; nil for none
}

// CallgrindResult is one scenario: the instructions (callgrind's Ir) the
// whole server process executed while exactly Requests requests were
// answered over one keep-alive connection, and then while it sat idle for
// as long, which is its background work (the change feed's poll, clocks,
// the runtime) over that time.
type CallgrindResult struct {
	Scenario       string
	Requests       int
	Ir             uint64
	Window         time.Duration
	IdleIr         uint64
	IdleWindow     time.Duration
	ResponseHeader []byte // the last response's header, to show what was measured
	// GCWindows counts windows measured again because a garbage
	// collection ran in them.
	GCWindows int
}

// PerRequest is whole-process instructions ÷ requests.
func (r CallgrindResult) PerRequest() float64 { return float64(r.Ir) / float64(r.Requests) }

// Background is the idle window's instructions scaled to the measured
// window and divided by its requests: the share of PerRequest that is not
// the requests' own work.
func (r CallgrindResult) Background() float64 {
	if r.IdleWindow <= 0 {
		return 0
	}
	return float64(r.IdleIr) * (r.Window.Seconds() / r.IdleWindow.Seconds()) / float64(r.Requests)
}

// CallgrindCase is one scenario measured on keylens and on the bare
// handler (its twin: the same requests, moments before), so that the ratio
// compares servers measured under the same load: how often a read finds
// its request already there, rather than parking the goroutine, shifts
// both a little with the machine's load.
type CallgrindCase struct {
	Scenario      string
	Keylens, Bare CallgrindResult
}

// Callgrind counts the instructions per request of keylens's /auth (hot
// key; keys spread over 10,000; over 100,000, capped at Developers) and of
// a bare fasthttp handler answered the same requests, each server under
// valgrind's callgrind with instrumentation off outside the measured
// windows.
func Callgrind(ctx context.Context, o CallgrindOptions) ([]CallgrindCase, error) {
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	for _, tool := range []string{"valgrind", "callgrind_control"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s not found: install valgrind (Debian: apt-get install -y valgrind)", tool)
		}
	}
	store := "sqlite:" + filepath.Join(o.Dir, "k.db")
	logf("seeding %d developers", o.Developers)
	keys, err := Seed(ctx, store, o.Developers)
	if err != nil {
		return nil, err
	}
	// Go under valgrind 3.19: no asynchronous preemption signals, and no
	// RDTSCP, which valgrind cannot run. One P, as the figures are per
	// request, not per core.
	env := append(os.Environ(), "GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off", "GOMAXPROCS=1")

	bare, err := startCallgrind(ctx, o.Dir, "bare", env, o.BareBin, nil, func(line string) string {
		// Its address; the runtime may warn about GODEBUG first.
		if _, err := netip.ParseAddrPort(strings.TrimSpace(line)); err != nil {
			return ""
		}
		return strings.TrimSpace(line)
	})
	if err != nil {
		return nil, fmt.Errorf("bare: %w", err)
	}
	defer bare.stop()
	ready := filepath.Join(o.Dir, "ready.json")
	args := []string{o.Command, "--store", store, "--sidecar-addr", "127.0.0.1:0", "--log-format", "json",
		"--cache-size", strconv.Itoa(o.Developers + 1000), "--ready-file", ready}
	if o.Command == "serve" {
		args = append(args, "--admin-addr", "127.0.0.1:0", "--portal-addr", "127.0.0.1:0")
	}
	logf("keylens %s and the bare handler under callgrind", o.Command)
	side, err := startCallgrind(ctx, o.Dir, "keylens", env, o.KeylensBin, args, func(string) string { return ReadySidecar(ready) })
	if err != nil {
		return nil, fmt.Errorf("keylens: %w", err)
	}
	defer side.stop()
	side.gcCycles = func() (float64, error) { return gcCycles(side.addr) }
	logf("caching all %d keys (instrumentation off)", len(keys))
	if err := warm(side.addr, keys, 4); err != nil {
		return nil, err
	}
	type scenario struct {
		name string
		key  func(*rand.Rand) string
	}
	scenarios := []scenario{{"hot key", func(*rand.Rand) string { return keys[0] }}}
	for _, n := range []int{10000, 100000} {
		n = min(n, len(keys))
		scenarios = append(scenarios, scenario{"keys spread over " + thousands(float64(n)), func(r *rand.Rand) string { return keys[r.IntN(n)] }})
	}
	var cases []CallgrindCase
	for _, sc := range scenarios {
		c := CallgrindCase{Scenario: sc.name}
		if c.Bare, err = bare.measure(ctx, "bare, "+sc.name, sc.key, o, logf); err != nil {
			return nil, err
		}
		if c.Keylens, err = side.measure(ctx, "keylens, "+sc.name, sc.key, o, logf); err != nil {
			return nil, err
		}
		cases = append(cases, c)
	}
	return cases, nil
}

// cgProcess is a server running under callgrind.
type cgProcess struct {
	name, addr, out string
	pid             int
	stop            func()
	dumps           int
	// gcCycles reads how many garbage collections the process has run;
	// nil where it cannot tell.
	gcCycles func() (float64, error)
}

func startCallgrind(ctx context.Context, dir, name string, env []string, bin string, args []string, addrOf func(string) string) (*cgProcess, error) {
	out := filepath.Join(dir, name+".callgrind")
	vg := append([]string{"--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=" + out,
		"--log-file=" + filepath.Join(dir, name+".valgrind.log"), bin}, args...)
	addr, stop, pid, err := StartProcess(ctx, false, env, "valgrind", vg, addrOf)
	if err != nil {
		return nil, err
	}
	return &cgProcess{name: name, addr: addr, out: out, pid: pid, stop: stop}, nil
}

// measure turns instrumentation on, sends o.Warmup requests, zeroes the
// counters, sends exactly o.Requests over one keep-alive connection and
// dumps; then zeroes again, waits as long with no requests and dumps the
// idle window; then turns instrumentation off.
//
// The runtime collects garbage at least every two minutes even when
// nothing allocates; with 100,000 identities cached, that one collection
// costs more than 10,000 instructions per request of a 20,000-request
// window (a few seconds of requests at the rates the sidecar serves). A
// window in which the process collected (its /metrics says) is measured
// again, up to three times, and GCWindows counts them.
func (p *cgProcess) measure(ctx context.Context, scenario string, key func(*rand.Rand) string, o CallgrindOptions, logf func(string, ...any)) (CallgrindResult, error) {
	res := CallgrindResult{Scenario: scenario, Requests: o.Requests}
	c := &fasthttp.HostClient{Addr: p.addr, MaxConns: 1, ReadTimeout: time.Minute, WriteTimeout: time.Minute}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + p.addr + "/auth")
	rng := rand.New(rand.NewPCG(1, 2))
	send := func(n int) error {
		for range n {
			req.Header.Set("Authorization", key(rng))
			if err := c.Do(req, resp); err != nil {
				return err
			}
			if resp.StatusCode() != fasthttp.StatusOK {
				return fmt.Errorf("%s: status %d", scenario, resp.StatusCode())
			}
		}
		return nil
	}
	if err := p.control("-i", "on"); err != nil {
		return res, err
	}
	if err := send(o.Warmup); err != nil {
		return res, err
	}
	for attempt := 1; ; attempt++ {
		var gcBefore float64
		if p.gcCycles != nil {
			var err error
			if gcBefore, err = p.gcCycles(); err != nil {
				return res, err
			}
		}
		if err := p.control("-z"); err != nil {
			return res, err
		}
		start := time.Now()
		if err := send(o.Requests); err != nil {
			return res, err
		}
		res.Window = time.Since(start)
		var err error
		if res.Ir, err = p.dump(); err != nil {
			return res, err
		}
		if p.gcCycles == nil {
			break
		}
		gcAfter, err := p.gcCycles()
		if err != nil {
			return res, err
		}
		if gcAfter == gcBefore {
			break
		}
		res.GCWindows++
		logf("%-36s a garbage collection ran in the window (%.0f Ir/request): measuring again", scenario, res.PerRequest())
		if attempt == 3 {
			break
		}
	}
	res.ResponseHeader = append([]byte(nil), resp.Header.Header()...)
	if err := p.control("-z"); err != nil {
		return res, err
	}
	start := time.Now()
	select {
	case <-time.After(res.Window):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	res.IdleWindow = time.Since(start)
	var err error
	if res.IdleIr, err = p.dump(); err != nil {
		return res, err
	}
	if err := p.control("-i", "off"); err != nil {
		return res, err
	}
	logf("%-36s %9.0f Ir/request (%d requests in %v; idle as long: %d Ir)", scenario, res.PerRequest(),
		res.Requests, res.Window.Round(time.Millisecond), res.IdleIr)
	return res, nil
}

// gcCycles reads go_gc_duration_seconds_count (garbage collections so far)
// from keylens's /metrics.
func gcCycles(addr string) (float64, error) {
	status, body, err := fasthttp.GetTimeout(nil, "http://"+addr+"/metrics", time.Minute)
	if err != nil || status != fasthttp.StatusOK {
		return 0, fmt.Errorf("GET /metrics: status %d, %v", status, err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "go_gc_duration_seconds_count "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, errors.New("GET /metrics: no go_gc_duration_seconds_count")
}

func (p *cgProcess) control(args ...string) error {
	out, err := exec.Command("callgrind_control", append(args, strconv.Itoa(p.pid))...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("callgrind_control %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// dump asks for a dump and returns its total instructions.
func (p *cgProcess) dump() (uint64, error) {
	if err := p.control("-d"); err != nil {
		return 0, err
	}
	p.dumps++
	file := fmt.Sprintf("%s.%d", p.out, p.dumps)
	deadline := time.Now().Add(time.Minute)
	for {
		ir, err := callgrindTotal(file)
		if err == nil {
			return ir, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("dump %s: %w", file, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// callgrindTotal reads a callgrind output file's total of its first event
// (Ir): its "totals:" line, else its "summary:" line.
func callgrindTotal(file string) (uint64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var summary string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "totals:"); ok {
			return firstField(v)
		}
		if v, ok := strings.CutPrefix(line, "summary:"); ok {
			summary = v
		}
	}
	if summary != "" {
		return firstField(summary)
	}
	return 0, errors.New("no totals yet")
}

func firstField(s string) (uint64, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, errors.New("empty totals")
	}
	return strconv.ParseUint(f[0], 10, 64)
}

// CallgrindTable renders cases as a Markdown table: the bare handler's
// figure (the median of the twins), then each case with its ratio to its
// twin, raw and with the background taken out of both.
func CallgrindTable(cases []CallgrindCase) string {
	var b strings.Builder
	b.WriteString("| case | instructions per request | ratio to bare | background per request | without background | ratio |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	if len(cases) == 0 {
		return b.String()
	}
	net := func(r CallgrindResult) float64 { return r.PerRequest() - r.Background() }
	var bare []CallgrindResult
	for _, c := range cases {
		bare = append(bare, c.Bare)
	}
	slices.SortFunc(bare, func(x, y CallgrindResult) int { return cmp.Compare(x.PerRequest(), y.PerRequest()) })
	med := bare[len(bare)/2]
	fmt.Fprintf(&b, "| bare fasthttp handler (median of the twins) | %s | 1 | %s | %s | 1 |\n", thousands(med.PerRequest()),
		thousands(med.Background()), thousands(net(med)))
	for _, c := range cases {
		fmt.Fprintf(&b, "| %s | %s | %.2f× | %s | %s | %.2f× |\n", c.Scenario, thousands(c.Keylens.PerRequest()),
			c.Keylens.PerRequest()/c.Bare.PerRequest(), thousands(c.Keylens.Background()), thousands(net(c.Keylens)),
			net(c.Keylens)/net(c.Bare))
	}
	b.WriteString("\nbare twins:")
	for _, c := range cases {
		fmt.Fprintf(&b, " %s %s;", c.Scenario, thousands(c.Bare.PerRequest()))
	}
	b.WriteString("\n")
	return b.String()
}

func thousands(f float64) string {
	s := strconv.FormatInt(int64(f+0.5), 10)
	var parts []string
	for len(s) > 3 {
		parts = append([]string{s[len(s)-3:]}, parts...)
		s = s[:len(s)-3]
	}
	return strings.Join(slices.Insert(parts, 0, s), ",")
}
