package tests

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

// startNginx runs nginx in the foreground on a free loopback port, with
// docs/gateways/nginx-keylens.conf (the recipe the README shows) between
// the sidecar and app.
func startNginx(t *testing.T, sidecarAddr, appAddr string) string {
	t.Helper()
	bin := findBinary(t, "nginx", "nginx", "/usr/sbin/nginx")
	dir := t.TempDir()
	recipe, err := filepath.Abs("../docs/gateways/nginx-keylens.conf")
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    upstream keylens_sidecar { server %[2]s; keepalive 8; }
    upstream app { server %[3]s; }
    server {
        listen 127.0.0.1:%[4]d;
        include %[5]s;
    }
}
`, dir, sidecarAddr, appAddr, port, recipe)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"))
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not start:\n%s\n%s", out, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// echoApp is an upstream that answers with the headers it received.
func echoApp(t *testing.T) *httptest.Server {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(app.Close)
	return app
}

func TestNginxForwardAuth(t *testing.T) {
	in := startKeylens(t, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey, "KEYLENS_ASSERTIONS=true"})
	dev, raw := issuedKey(t, in)
	app := echoApp(t)
	gw := startNginx(t, strings.TrimPrefix(in.SidecarURL, "http://"), strings.TrimPrefix(app.URL, "http://"))
	forwardAuthScenario(t, "nginx", in, dev, raw, gw)
}

// forwardAuthScenario drives a gateway running a forward-auth recipe in
// front of echoApp: identity headers reach the app and forged ones never
// do, unknown and missing keys are 401, a revoked key is refused within a
// second, a deactivated developer's key is 403.
func forwardAuthScenario(t *testing.T, name string, in *instance, dev, raw, gw string) {
	call := func(headers map[string]string) (int, http.Header) {
		req, _ := http.NewRequest("GET", gw+"/orders?id=1", nil)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		r := send(t, req)
		if r.Status != 200 {
			return r.Status, nil
		}
		var got http.Header
		if err := json.Unmarshal(r.Body, &got); err != nil {
			t.Fatalf("app answer %s", r.Body)
		}
		return r.Status, got
	}

	// A valid key, with every identity header also forged by the client.
	status, got := call(map[string]string{"Authorization": raw, "X-Developer-Id": "evil", "X-Developer-Email": "evil@example.com",
		"X-Key-Id": "forged", "X-Developer-Policies": "admin", "X-Developer-Field-Company": "Evil Corp",
		"X-Key-Request-Field-Use-case": "root", "X-Developer-Assertion": "forged"})
	if status != 200 {
		t.Fatalf("valid key through %s: %d", name, status)
	}
	want := map[string]string{"X-Developer-Id": dev, "X-Developer-Email": "ada@example.com", "X-Key-Id": keylens.HashKey(raw),
		"X-Developer-Policies": "pol-token,pol-gold", "X-Developer-Field-Company": "Analytical Engines", "X-Key-Request-Field-Use-Case": "invoicing"}
	for k, v := range want {
		if vs := got.Values(k); len(vs) != 1 || vs[0] != v {
			t.Errorf("app received %s = %q, want exactly %q", k, vs, v)
		}
	}
	if a := got.Get("X-Developer-Assertion"); a == "" || a == "forged" {
		t.Errorf("app received assertion %q", a)
	}

	// A developer without the custom field: the forged value is removed,
	// not passed through.
	other := createDeveloper(t, in, `{"email":"bob@example.com"}`)
	b := decodeApproval(t, in.do("POST", "/api/portal/developers/"+other+"/keys", `{"apply_policies":["pol-token"]}`))
	_, got = call(map[string]string{"Authorization": b.RawKey, "X-Developer-Field-Company": "Evil Corp", "X-Developer-Id": "evil"})
	if got.Get("X-Developer-Field-Company") != "" || got.Get("X-Developer-Id") != other {
		t.Errorf("bob's request reached the app with Company %q, id %q", got.Get("X-Developer-Field-Company"), got.Get("X-Developer-Id"))
	}

	// Unknown and missing keys stop at the gateway.
	for name, h := range map[string]map[string]string{"unknown": {"Authorization": "nope"}, "missing": {"X-Developer-Id": dev}} {
		if status, _ := call(h); status != 401 {
			t.Errorf("%s key: %d, want 401", name, status)
		}
	}

	// Revocation: refused within a second (the change feed applies it as
	// it commits; the time taken is reported).
	revoked := time.Now()
	wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+dev+"/keys/"+url.PathEscape(raw), ""), 200, "OK", "Data deleted")
	for {
		if status, _ := call(map[string]string{"Authorization": raw}); status == 401 {
			t.Logf("revoked key refused by %s %v after the revocation was sent", name, time.Since(revoked).Round(time.Microsecond))
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatalf("a revoked key still passed %s after 1s", name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Deactivation: 403.
	wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+other, `{"email":"bob@example.com","inactive":true,"keys":{"`+keylens.HashKey(b.RawKey)+`":["pol-token"]}}`), 200, "OK", "")
	waitUntil(t, "deactivated developer refused by "+name, func() bool {
		s, _ := call(map[string]string{"Authorization": b.RawKey})
		return s == 403
	})
}
