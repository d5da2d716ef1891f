// Command keylens runs the keylens portal store and sidecar.
//
//	keylens serve [flags]     portal REST API and sidecar in one process
//	keylens sidecar [flags]   the sidecar alone, beside a gateway, on a shared store or a portal
//	keylens admin add EMAIL   add an admin account of the console
//	keylens rotate-secrets-key  re-seal the secrets at rest under a new key
//	keylens tyk sync [--fix]  compare keys with the Tyk gateway and repair drift
//	keylens version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Set by the build (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // a runtime failure: the store could not open, a port was taken
	exitUsage  = 2 // bad command line or configuration
)

// run is main with its dependencies passed in, for tests.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve", "sidecar":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		m := NewMain(stdout, stderr)
		m.SidecarOnly = args[0] == "sidecar"
		name := "keylens " + args[0]
		if err := m.ParseFlags(args[1:], getenv); err != nil {
			if errors.Is(err, errHelp) {
				return exitOK
			}
			fmt.Fprintf(stderr, "%s: invalid configuration:\n%s\n", name, indent(err))
			return exitUsage
		}
		if err := m.Run(ctx); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			m.Close()
			var ue usageError
			if errors.As(err, &ue) {
				return exitUsage
			}
			return exitFailed
		}
		serveErr := m.Wait(ctx)
		stop() // a second signal now kills the process at once
		if err := errors.Join(serveErr, m.Close()); err != nil {
			fmt.Fprintf(stderr, "%s: shutdown: %v\n", name, err)
			return exitFailed
		}
		return exitOK
	case "admin":
		return adminCommand(context.Background(), args[1:], getenv, stdout, stderr)
	case "tyk":
		return tykCommand(context.Background(), args[1:], getenv, stdout, stderr)
	case "rotate-secrets-key":
		return rotateSecretsKey(context.Background(), args[1:], getenv, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "keylens", version)
		return exitOK
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "keylens: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

const usage = `keylens: which developer owns this key?

Usage:
  keylens serve [flags]     run the portal REST API and the sidecar (keylens serve -h for flags)
  keylens sidecar [flags]   run the sidecar alone on a shared store or a portal (keylens sidecar -h)
  keylens admin add EMAIL   add an admin account of the console (the password is asked for, or read from stdin)
  keylens admin list        list the console's admin accounts
  keylens rotate-secrets-key [flags]
                            re-seal the JWT and OAuth secrets at rest under a new key (-h for flags)
  keylens tyk sync [--fix]  report (and repair) differences between keylens and the Tyk gateway (-h for flags)
  keylens version           print the version
`
