// Command tykgateway serves the double of a Tyk gateway's REST API
// (package gatewayapi) for keylens's end-to-end tests:
//
//	tykgateway -config gw.json -state state.json -addr 127.0.0.1:0 -ready-file ready
//
// It writes its URL to the ready file once it listens. Killed and started
// again on the same state file, it keeps its keys, as a gateway's Redis
// does.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/TykTechnologies/tyk/gatewayapi"
)

func main() {
	config := flag.String("config", "", "JSON of gatewayapi.Config")
	stateFile := flag.String("state", "", "file that keeps the keys and OAuth clients")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	ready := flag.String("ready-file", "", "file to write the URL to once listening")
	flag.Parse()
	var cfg gatewayapi.Config
	b, err := os.ReadFile(*config)
	if err == nil {
		err = json.Unmarshal(b, &cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "config:", err)
		os.Exit(2)
	}
	g, err := gatewayapi.New(cfg, *stateFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *ready != "" {
		tmp := *ready + ".tmp"
		if err := os.WriteFile(tmp, []byte("http://"+ln.Addr().String()), 0o644); err == nil {
			err = os.Rename(tmp, *ready)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	fmt.Fprintln(os.Stderr, http.Serve(ln, g))
	os.Exit(1)
}
