// Package pgtest runs a throwaway PostgreSQL cluster for tests: initdb in a
// temporary directory, a server on a loopback port, each test its own
// database. It uses the binaries of Debian's postgresql package (make test
// installs it). Without them a test is skipped, except under CI=true, where
// it fails: CI never skips silently.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Cluster is a running server.
type Cluster struct {
	// URL reaches the postgres database as the superuser.
	URL  string
	Port int

	dir  string
	bin  string
	cmd  *exec.Cmd
	next atomic.Int64
}

// Start runs a cluster of the test's own, stopped when it ends: for tests
// that stop and restart the server.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	c, err := start()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL: %v", err)
		}
		tb.Skipf("PostgreSQL unavailable (make test installs it): %v", err)
	}
	tb.Cleanup(c.stop)
	return c
}

// Down stops the server (a fast shutdown), keeping its data.
func (c *Cluster) Down(tb testing.TB) {
	tb.Helper()
	c.halt()
}

// Up starts the server again on the same port and data.
func (c *Cluster) Up(tb testing.TB) {
	tb.Helper()
	if err := c.run(); err != nil {
		tb.Fatal(err)
	}
}

var (
	once    sync.Once
	shared  *Cluster
	started error
)

// Shared returns the process's cluster, starting it on first use; Stop it
// from TestMain. Without PostgreSQL binaries it skips tb, or fails it when
// CI=true.
func Shared(tb testing.TB) *Cluster {
	tb.Helper()
	once.Do(func() { shared, started = start() })
	if started != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL: %v", started)
		}
		tb.Skipf("PostgreSQL unavailable (make test installs it): %v", started)
	}
	return shared
}

// Stop stops the shared cluster, if one was started, and removes its files.
func Stop() {
	if shared != nil {
		shared.stop()
	}
}

// binDir finds the newest installed PostgreSQL's binaries.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no initdb under /usr/lib/postgresql/*/bin (Debian package postgresql)")
}

// postgresUser is who runs initdb and the server when we are root: both
// refuse to run as root.
var postgresUser *syscall.Credential

// asPostgres runs a command as the postgres user when we are root, else as
// ourselves.
func asPostgres(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	if postgresUser != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: postgresUser}
		cmd.Dir = "/"
	}
	return cmd
}

func start() (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "keylens-pg-")
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		postgresUser = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := asPostgres(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--no-sync").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &Cluster{Port: port, dir: dir, bin: bin,
		URL: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)}
	if err := c.run(); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// run starts the server and waits until it answers: durability off (a
// throwaway cluster), and buffers of a size a server has (512 MB, as the
// README advises: with the default 128 MB, admin writes during a flood of
// hits waited longer).
func (c *Cluster) run() error {
	cmd := asPostgres(filepath.Join(c.bin, "postgres"), "-D", filepath.Join(c.dir, "data"), "-p", strconv.Itoa(c.Port), "-k", c.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=200", "-c", "shared_buffers=512MB")
	logFile, err := os.OpenFile(filepath.Join(c.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return err
	}
	c.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := sql.Open("pgx", c.URL)
		if err == nil {
			err = db.PingContext(context.Background())
			db.Close()
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
			return fmt.Errorf("server did not start: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (c *Cluster) stop() {
	c.halt()
	os.RemoveAll(c.dir)
}

// halt stops the server process, if it runs.
func (c *Cluster) halt() {
	if c.cmd != nil && c.cmd.Process != nil {
		// SIGINT: PostgreSQL's fast shutdown.
		_ = c.cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.cmd.Process.Kill()
		}
		c.cmd = nil
	}
}

// NewDatabase creates an empty database for one test and returns its URL;
// it is dropped when the test ends.
func (c *Cluster) NewDatabase(tb testing.TB) string {
	tb.Helper()
	url, name, err := c.CreateDatabase()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		admin, err := sql.Open("pgx", c.URL)
		if err != nil {
			return
		}
		defer admin.Close()
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	return url
}

// CreateDatabase creates an empty database that lives as long as the
// cluster (for fixtures shared by several tests or benchmark runs) and
// returns its URL and name.
func (c *Cluster) CreateDatabase() (url, name string, err error) {
	name = fmt.Sprintf("t%d_%d", os.Getpid(), c.next.Add(1))
	admin, err := sql.Open("pgx", c.URL)
	if err != nil {
		return "", "", err
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		return "", "", err
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, name), name, nil
}
