package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/keylens/keylens/sqlstore"
)

// rotateSecretsKey is `keylens rotate-secrets-key`: it re-seals every
// secret at rest under a new key, in one transaction, opening each with
// the current one. Stop the keylens processes on the store first, and
// start them again with the new key.
func rotateSecretsKey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keylens rotate-secrets-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	store := fs.String("store", "sqlite:./data/keylens.db", "store: sqlite:PATH or postgres://URL")
	oldFile := fs.String("secrets-key-file", "", "the current key's file (or KEYLENS_SECRETS_KEY); none when the secrets are in the clear")
	newFile := fs.String("new-secrets-key-file", "", "the new key's file (or KEYLENS_NEW_SECRETS_KEY)")
	clear := fs.Bool("clear", false, "store the secrets in the clear again instead of under a new key")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: keylens rotate-secrets-key --store DSN [--secrets-key-file F] (--new-secrets-key-file F | --clear)\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if v := getenv("KEYLENS_STORE"); v != "" && !flagSet(fs, "store") {
		*store = v
	}
	var problems []error
	oldKey, err := loadSecretsKey(*oldFile, getenv("KEYLENS_SECRETS_KEY"), "--secrets-key-file", "KEYLENS_SECRETS_KEY")
	if err != nil {
		problems = append(problems, err)
	}
	newKey, err := loadSecretsKey(*newFile, getenv("KEYLENS_NEW_SECRETS_KEY"), "--new-secrets-key-file", "KEYLENS_NEW_SECRETS_KEY")
	if err != nil {
		problems = append(problems, err)
	}
	switch {
	case newKey == nil && !*clear:
		problems = append(problems, errors.New("give the new key (--new-secrets-key-file or KEYLENS_NEW_SECRETS_KEY), or --clear"))
	case newKey != nil && *clear:
		problems = append(problems, errors.New("--clear and a new key: give one"))
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " ")))
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "keylens rotate-secrets-key: invalid configuration:\n%s\n", indent(errors.Join(problems...)))
		return exitUsage
	}
	db, err := sqlstore.Open(ctx, *store)
	if err != nil {
		fmt.Fprintf(stderr, "keylens rotate-secrets-key: open store: %v\n", err)
		return exitFailed
	}
	defer db.Close()
	if oldKey != nil {
		if err := db.UseSecretsKey(oldKey); err != nil {
			fmt.Fprintf(stderr, "keylens rotate-secrets-key: %v\n", err)
			return exitFailed
		}
	}
	n, err := db.RotateSecrets(ctx, newKey)
	if err != nil {
		fmt.Fprintf(stderr, "keylens rotate-secrets-key: nothing changed: %v\n", err)
		return exitFailed
	}
	if *clear {
		fmt.Fprintf(stdout, "keylens: %d secrets are now stored in the clear; start keylens without a secrets key\n", n)
	} else {
		fmt.Fprintf(stdout, "keylens: %d secrets re-sealed; start keylens with the new secrets key\n", n)
	}
	return exitOK
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
