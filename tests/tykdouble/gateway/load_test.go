package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"plugin"
	"testing"

	"github.com/TykTechnologies/tyk/apidef"
	"github.com/TykTechnologies/tyk/gateway"
)

// TestPluginLoads builds the keylens plugin with -buildmode=plugin in this
// workspace and loads it as the gateway does (plugin.Open, then a symbol
// per hook), checking each hook's type against the gateway's signatures
// and calling one across the plugin boundary.
func TestPluginLoads(t *testing.T) {
	so := filepath.Join(t.TempDir(), "keylens.so")
	build := exec.Command("go", "build", "-buildmode=plugin", "-o", so, ".")
	build.Dir = filepath.Join("..", "..", "..", "plugin")
	build.Env = os.Environ()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildmode=plugin: %v\n%s", err, out)
	}
	p, err := plugin.Open(so)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"KeylensAuth", "KeylensPostAuth"} {
		sym, err := p.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := sym.(func(http.ResponseWriter, *http.Request)); !ok {
			t.Errorf("%s is a %T, not a request hook", name, sym)
		}
	}
	sym, err := p.Lookup("KeylensHits")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sym.(func(http.ResponseWriter, *http.Response, *http.Request)); !ok {
		t.Errorf("KeylensHits is a %T, not a response hook", sym)
	}

	auth, _ := p.Lookup("KeylensAuth")
	def := &apidef.APIDefinition{APIID: "a", ConfigData: map[string]interface{}{
		"keylens": map[string]interface{}{"sidecar_url": "http://127.0.0.1:1"}}}
	r := gateway.Request(httptest.NewRequest("GET", "/", nil), def, "", nil)
	r.Header.Set("Authorization", "some-key")
	rec, next := gateway.RunHook(auth.(func(http.ResponseWriter, *http.Request)), r)
	if next || rec.Code != http.StatusServiceUnavailable {
		t.Errorf("auth with the sidecar down: %d %s", rec.Code, rec.Body)
	}
}
