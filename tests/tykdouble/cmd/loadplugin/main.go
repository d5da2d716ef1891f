// Command loadplugin plays the gateway binary in the plugin compiler's
// layout test (gateway/load_test.go): built with -trimpath from the same
// workspace as the plugin, as the gateway is, it loads a plugin file as
// the gateway does (plugin.Open, then a symbol per hook, asserted to the
// hook types) and calls the auth hook across the plugin boundary with the
// sidecar unreachable. It prints "ok" or says what failed, exiting 1.
//
// It links golang-jwt/v5, as released gateways do through their own
// dependencies, at the version the double's go.mod requires: the load
// test pins it to each release line's.
package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"plugin"

	"github.com/TykTechnologies/tyk/apidef"
	"github.com/TykTechnologies/tyk/gateway"

	_ "github.com/golang-jwt/jwt/v5" // linked by every released gateway
)

func main() {
	if err := run(os.Args[1]); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("ok")
}

func run(path string) error {
	p, err := plugin.Open(path)
	if err != nil {
		return err
	}
	hooks := map[string]func(http.ResponseWriter, *http.Request){}
	for _, name := range []string{"KeylensAuth", "KeylensPostAuth"} {
		sym, err := p.Lookup(name)
		if err != nil {
			return err
		}
		h, ok := sym.(func(http.ResponseWriter, *http.Request))
		if !ok {
			return fmt.Errorf("%s is a %T, not a request hook", name, sym)
		}
		hooks[name] = h
	}
	sym, err := p.Lookup("KeylensHits")
	if err != nil {
		return err
	}
	if _, ok := sym.(func(http.ResponseWriter, *http.Response, *http.Request)); !ok {
		return fmt.Errorf("KeylensHits is a %T, not a response hook", sym)
	}
	def := &apidef.APIDefinition{APIID: "a", OrgID: "o", ConfigData: map[string]interface{}{
		"keylens": map[string]interface{}{"sidecar_url": "http://127.0.0.1:1"}}}
	r := gateway.Request(httptest.NewRequest("GET", "/", nil), def, "", nil)
	r.Header.Set("Authorization", "some-key")
	if rec, next := gateway.RunHook(hooks["KeylensAuth"], r); next || rec.Code != http.StatusServiceUnavailable {
		return fmt.Errorf("auth with the sidecar down: %d %s", rec.Code, rec.Body)
	}
	return nil
}
