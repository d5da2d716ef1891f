package tyktest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a throwaway redis-server (Debian's redis-server package, which
// make test installs) on a loopback port, its files in a temporary
// directory, persisted with an append-only file so that a restart keeps
// its lists. Without the binary a test is skipped, except under CI=true,
// where it fails.
type Redis struct {
	URL  string // redis://127.0.0.1:PORT/0
	Addr string

	mu   sync.Mutex
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis runs a server of the test's own, stopped when it ends.
func StartRedis(tb testing.TB) *Redis {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		bin = "/usr/bin/redis-server"
		if _, err2 := os.Stat(bin); err2 != nil {
			if os.Getenv("CI") == "true" {
				tb.Fatalf("redis-server: %v", err)
			}
			tb.Skipf("redis-server unavailable (make test installs it): %v", err)
		}
	}
	dir := tb.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &Redis{dir: dir, Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	r.URL = "redis://" + r.Addr + "/0"
	if err := os.WriteFile(filepath.Join(dir, "redis.conf"), []byte(fmt.Sprintf(
		"port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\nappendonly yes\nappendfsync everysec\n"+
			"daemonize no\nlogfile %s\n", port, dir, filepath.Join(dir, "redis.log"))), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := r.run(bin); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.halt(syscall.SIGKILL) })
	return r
}

// Client returns a client of the server, closed when the test ends.
func (r *Redis) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(r.URL)
	if err != nil {
		tb.Fatal(err)
	}
	c := redis.NewClient(opt)
	tb.Cleanup(func() { c.Close() })
	return c
}

// Restart stops the server as an operator would (SIGTERM: it writes its
// append-only file and exits), waits down, and starts it again on the same
// port and data.
func (r *Redis) Restart(tb testing.TB, down time.Duration) {
	tb.Helper()
	r.halt(syscall.SIGTERM)
	time.Sleep(down) // the outage itself, not a wait for a condition
	bin, _ := exec.LookPath("redis-server")
	if bin == "" {
		bin = "/usr/bin/redis-server"
	}
	if err := r.run(bin); err != nil {
		tb.Fatal(err)
	}
}

func (r *Redis) run(bin string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := exec.Command(bin, filepath.Join(r.dir, "redis.conf"))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redis-server: %w", err)
	}
	r.cmd, r.done = cmd, make(chan struct{})
	done := r.done
	go func() { _ = cmd.Wait(); close(done) }()
	c := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			return fmt.Errorf("redis-server exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return fmt.Errorf("redis-server did not answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// halt stops the server with sig and waits for it to exit.
func (r *Redis) halt(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(sig)
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
}

// Gateway writes records as a Tyk gateway's analytics purger does: one
// pipelined RPUSH of a batch, one element per record, and EXPIRE 60 on the
// list when it has no expiry (storage_expiration_time).
type Gateway struct {
	Client *redis.Client
	// List is the analytics list: analytics-tyk-system-analytics, or
	// one of its _0 ... _9 variants.
	List string
}

// Push writes records to the list.
func (g *Gateway) Push(ctx context.Context, records ...[]byte) error {
	args := make([]any, len(records))
	for i, r := range records {
		args[i] = r
	}
	_, err := g.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.RPush(ctx, g.List, args...)
		p.ExpireNX(ctx, g.List, 60*time.Second)
		return nil
	})
	return err
}

// AnalyticsKey is the gateway's default analytics list.
const AnalyticsKey = "analytics-tyk-system-analytics"

// Lists are the gateway's list and its enable_multiple_analytics_keys
// variants.
func Lists(base string) []string {
	out := []string{base}
	for i := range 10 {
		out = append(out, base+"_"+strconv.Itoa(i))
	}
	return out
}
