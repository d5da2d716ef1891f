package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/keylens/keylens/sqlstore"
	"github.com/keylens/keylens/tykgateway"
)

const tykUsage = `Usage: keylens tyk sync [--fix] [flags]

Compares keylens with the Tyk gateway: catalogue policies the gateway lacks,
and every key keylens holds (by hash): missing there, policies differ,
metadata differs; and portal keys (with a tyk_developer_id) only in the
gateway (needs the gateway's enable_hashed_keys_listing). --fix rewrites
policies and metadata (keeping quota counters) and deletes keys only in the
gateway; a missing key cannot be recreated (keylens keeps only its hash).
Exit status: 0 in sync (or all fixed), 1 drift remains or a failure, 2 usage.

`

// tykCommand is `keylens tyk sync`.
func tykCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "sync" {
		fmt.Fprint(stderr, tykUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("keylens tyk sync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	store := fs.String("store", "sqlite:./data/keylens.db", "store: sqlite:PATH or postgres://URL (or KEYLENS_STORE)")
	gateway := fs.String("tyk-gateway", "", "the Tyk gateway's URL (or KEYLENS_TYK_GATEWAY)")
	secret := fs.String("tyk-secret", "", "the gateway's secret (or KEYLENS_TYK_SECRET)")
	inactive := fs.String("tyk-inactive-policy", "", "as for keylens serve (or KEYLENS_TYK_INACTIVE_POLICY)")
	secretsFile := fs.String("secrets-key-file", "", "as for keylens serve (or KEYLENS_SECRETS_KEY): opens the OAuth client secrets a skipped change needs")
	fix := fs.Bool("fix", false, "repair what can be repaired")
	fs.Usage = func() { fmt.Fprint(fs.Output(), tykUsage); fs.PrintDefaults() }
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	for name, p := range map[string]*string{"store": store, "tyk-gateway": gateway, "tyk-secret": secret, "tyk-inactive-policy": inactive} {
		if v := getenv(envName(name)); v != "" && !flagSet(fs, name) {
			*p = v
		}
	}
	if fs.NArg() != 0 {
		fmt.Fprint(stderr, tykUsage)
		return exitUsage
	}
	client, err := tykgateway.New(*gateway, *secret)
	if err != nil {
		fmt.Fprintf(stderr, "keylens tyk sync: --tyk-gateway/--tyk-secret: %v\n", err)
		return exitUsage
	}
	secretsKey, err := loadSecretsKey(*secretsFile, getenv("KEYLENS_SECRETS_KEY"), "--secrets-key-file", "KEYLENS_SECRETS_KEY")
	if err != nil {
		fmt.Fprintf(stderr, "keylens tyk sync: %v\n", err)
		return exitUsage
	}
	db, err := sqlstore.Open(ctx, *store)
	if err != nil {
		fmt.Fprintf(stderr, "keylens tyk sync: open store: %v\n", err)
		return exitFailed
	}
	defer db.Close()
	if secretsKey != nil {
		if err := db.UseSecretsKey(secretsKey); err != nil {
			fmt.Fprintf(stderr, "keylens tyk sync: %v\n", err)
			return exitFailed
		}
	}
	policy, err := inactivePolicy(ctx, db, *inactive)
	if err != nil {
		fmt.Fprintf(stderr, "keylens tyk sync: %v\n", err)
		return exitFailed
	}
	rep, err := tykgateway.Sync(ctx, db, client, policy, *fix)
	if err != nil {
		fmt.Fprintf(stderr, "keylens tyk sync: %v\n", err)
		return exitFailed
	}
	for _, d := range rep.Drift {
		fmt.Fprintln(stdout, d)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(stdout, "note:", n)
	}
	fmt.Fprintf(stdout, "%d keys compared, %d differences, %d left\n", rep.Keys, len(rep.Drift), rep.Unfixed())
	if rep.Unfixed() > 0 {
		return exitFailed
	}
	return exitOK
}
