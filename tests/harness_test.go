// Package tests drives the real keylens binary over loopback.
package tests

import (
	"errors"

	"github.com/keylens/keylens/docs/contract"
	"github.com/keylens/keylens/sqlstore/pgtest"

	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// keylensBin is the binary under test, built once by TestMain.
var keylensBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keylens-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	keylensBin = filepath.Join(dir, "keylens")
	build := exec.Command("go", "build", "-o", keylensBin, "../cmd/keylens")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building keylens:", err)
		os.Exit(1)
	}
	code := m.Run()
	if contractSummary() != 0 && code == 0 {
		code = 1
	}
	pgtest.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testAdminKey is the admin key instances start with unless told otherwise.
const testAdminKey = "e2e-admin-key-0123456789"

// instance is one running `keylens serve`.
type instance struct {
	t          testing.TB
	cmd        *exec.Cmd
	AdminURL   string
	SidecarURL string
	PortalURL  string // the developer portal's
	Store      string
	Key        string // admin key requests send
	stdout     *lockedBuffer
	stderr     *lockedBuffer
	done       chan struct{}
	exitErr    error
}

// startKeylens runs `keylens serve` on a fresh SQLite file (or on store, when
// given) with ports chosen by the kernel, and waits until both listen.
func startKeylens(t testing.TB, store string, env []string, args ...string) *instance {
	t.Helper()
	if store == "" {
		store = "sqlite:" + filepath.Join(t.TempDir(), "keylens.db")
	}
	ready := filepath.Join(t.TempDir(), "ready.json")
	argv := append([]string{"serve", "--store", store, "--admin-addr", "127.0.0.1:0",
		"--sidecar-addr", "127.0.0.1:0", "--portal-addr", "127.0.0.1:0", "--log-format", "json", "--ready-file", ready}, args...)
	in := &instance{t: t, Store: store, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	in.cmd = exec.Command(keylensBin, argv...)
	in.cmd.Env = append(cleanEnv(), env...)
	in.cmd.Stdout, in.cmd.Stderr = in.stdout, in.stderr
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		in.exitErr = in.cmd.Wait()
		close(in.done)
	}()
	urls, err := waitReady(ready, in.done)
	if err != nil {
		in.cmd.Process.Kill()
		<-in.done
		t.Fatalf("keylens did not become ready (%v, exit %v):\n%s", err, in.exitErr, in.stderr)
	}
	in.AdminURL, in.SidecarURL, in.PortalURL = urls["admin"], urls["sidecar"], urls["portal"]
	contractTransport.Register(contract.Admin, in.AdminURL)
	contractTransport.Register(contract.Sidecar, in.SidecarURL)
	admin, sidecar := in.AdminURL, in.SidecarURL
	t.Cleanup(func() { // its ports may serve something else next
		contractTransport.Unregister(admin)
		contractTransport.Unregister(sidecar)
	})
	in.Key = testAdminKey
	t.Cleanup(func() {
		select {
		case <-in.done:
		default:
			in.cmd.Process.Kill()
			<-in.done
		}
	})
	return in
}

// stop sends SIGTERM and requires a clean exit.
func (in *instance) stop() {
	in.t.Helper()
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		in.t.Fatal(err)
	}
	select {
	case <-in.done:
	case <-time.After(20 * time.Second):
		in.cmd.Process.Kill()
		in.t.Fatalf("keylens did not stop on SIGTERM:\n%s", in.stderr)
	}
	if in.exitErr != nil {
		in.t.Fatalf("keylens exited with %v:\n%s", in.exitErr, in.stderr)
	}
}

// kill ends keylens with SIGKILL, as a crash would.
func (in *instance) kill() {
	in.t.Helper()
	_ = in.cmd.Process.Kill()
	select {
	case <-in.done:
	case <-time.After(20 * time.Second):
		in.t.Fatal("keylens did not die on SIGKILL")
	}
}

// waitReady waits for a keylens process's --ready-file and returns its
// listeners' URLs; done closes when the process exits.
func waitReady(path string, done <-chan struct{}) (map[string]string, error) {
	deadline := time.After(30 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil {
			var urls map[string]string
			if err := json.Unmarshal(b, &urls); err != nil {
				return nil, fmt.Errorf("ready file: %w", err)
			}
			return urls, nil
		}
		select {
		case <-done:
			return nil, errors.New("exited during start-up")
		case <-deadline:
			return nil, errors.New("no ready file within 30 s")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// findBinary returns the first of names on PATH (or given as a path), for a
// dependency scripts/test-deps.sh installs. Missing, it fails the test
// under CI=true (a missing dependency must never pass for a skip there)
// and skips it elsewhere.
func findBinary(t *testing.T, what string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if path, err := exec.LookPath(n); err == nil {
			return path
		}
	}
	missingDependency(t, what+" is not installed")
	return ""
}

// missingDependency fails the test under CI=true and skips it elsewhere.
func missingDependency(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (scripts/test-deps.sh installs it); in CI a missing dependency fails", why)
	}
	t.Skipf("%s: run make test, which installs it (under CI=true this fails instead)", why)
}

// cleanEnv is the test process's environment without KEYLENS_* settings, so
// a developer's shell cannot change what the tests see.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYLENS_") {
			env = append(env, kv)
		}
	}
	return env
}

// response is a finished HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a fresh value of type T.
func decodeAs[T any](t testing.TB, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("response %d is not the JSON expected (%v): %s", r.Status, err, r.Body)
	}
	return v
}

// client is how tests talk to keylens: every exchange with one of its
// listeners is checked against docs/openapi.yaml (contract.go).
var client = &http.Client{Timeout: 30 * time.Second, Transport: contractTransport}

// do sends a request to the admin API with the admin key.
func (in *instance) do(method, path, body string) response {
	in.t.Helper()
	return in.doAuth(method, path, body, in.Key)
}

// doAuth sends a request with the given Authorization header ("" for none).
func (in *instance) doAuth(method, path, body, auth string) response {
	in.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, in.AdminURL+path, rd)
	if err != nil {
		in.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return send(in.t, req)
}

func send(t testing.TB, req *http.Request) response {
	t.Helper()
	res, err := client.Do(withTest(req, t))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// envelope is Tyk's message wrapper.
type envelope struct {
	Status  string
	Message string
	Meta    any
}

// wantEnvelope checks status code and envelope, Message exactly when given.
func wantEnvelope(t testing.TB, r response, status int, wantStatus, message string) envelope {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &raw); err != nil {
		t.Fatalf("body is not a JSON object: %s", r.Body)
	}
	if _, ok := raw["Meta"]; !ok || len(raw) != 3 {
		t.Errorf("envelope members %s, want exactly Status, Message, Meta", r.Body)
	}
	e := decodeAs[envelope](t, r)
	if e.Status != wantStatus || (message != "" && e.Message != message) {
		t.Fatalf("envelope %s, want Status %q Message %q", r.Body, wantStatus, message)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return e
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
