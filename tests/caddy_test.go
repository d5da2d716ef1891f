package tests

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startCaddy runs Caddy with docs/gateways/caddy-keylens.Caddyfile, the
// recipe itself, configured through its environment variables.
func startCaddy(t *testing.T, sidecarAddr, appAddr string) string {
	t.Helper()
	bin := findBinary(t, "caddy", "caddy")
	recipe, err := filepath.Abs("../docs/gateways/caddy-keylens.Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "run", "--config", recipe, "--adapter", "caddyfile")
	dir := t.TempDir()
	cmd.Env = append(cleanEnv(), "KEYLENS_LISTEN="+addr, "KEYLENS_SIDECAR="+sidecarAddr, "KEYLENS_UPSTREAM="+appAddr,
		"HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr
		}
		select {
		case <-done:
			t.Fatalf("caddy exited:\n%s", out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not start:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCaddyForwardAuth runs the nginx test's scenario through Caddy's
// forward_auth with the recipe file.
func TestCaddyForwardAuth(t *testing.T) {
	in := startKeylens(t, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey, "KEYLENS_ASSERTIONS=true"})
	dev, raw := issuedKey(t, in)
	app := echoApp(t)
	gw := startCaddy(t, strings.TrimPrefix(in.SidecarURL, "http://"), strings.TrimPrefix(app.URL, "http://"))
	forwardAuthScenario(t, "caddy", in, dev, raw, gw)
}
