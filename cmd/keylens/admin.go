package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/sqlstore"
)

// stdin is where `keylens admin add` reads a password; a variable for tests.
var stdin io.Reader = os.Stdin

// adminCommand is `keylens admin add EMAIL` and `keylens admin list`: the
// console's admin accounts from the command line (the console manages them
// too). The password comes from a prompt on a terminal (twice, not echoed),
// or as the first line of stdin.
func adminCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "add" && args[0] != "list") {
		fmt.Fprint(stderr, adminUsage)
		return exitUsage
	}
	sub := args[0]
	fs := flag.NewFlagSet("keylens admin "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	store := fs.String("store", "sqlite:./data/keylens.db", "store: sqlite:PATH or postgres://URL (or KEYLENS_STORE)")
	fs.Usage = func() { fmt.Fprint(fs.Output(), adminUsage); fs.PrintDefaults() }
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if v := getenv("KEYLENS_STORE"); v != "" && !flagSet(fs, "store") {
		*store = v
	}
	want := 0
	if sub == "add" {
		want = 1
	}
	if fs.NArg() != want {
		fmt.Fprint(stderr, adminUsage)
		return exitUsage
	}
	var email, password string
	if sub == "add" {
		email = strings.TrimSpace(fs.Arg(0))
		if err := keylens.ValidateEmail(email); err != nil {
			fmt.Fprintf(stderr, "keylens admin add: %s\n", keylens.ErrorMessage(err))
			return exitUsage
		}
		var err error
		if password, err = readPassword(stdout); err != nil {
			fmt.Fprintf(stderr, "keylens admin add: %v\n", err)
			return exitUsage
		}
		if err := keylens.ValidateAdminPassword(password); err != nil {
			fmt.Fprintf(stderr, "keylens admin add: %s\n", keylens.ErrorMessage(err))
			return exitUsage
		}
	}
	db, err := sqlstore.Open(ctx, *store)
	if err != nil {
		fmt.Fprintf(stderr, "keylens admin %s: open store: %v\n", sub, err)
		return exitFailed
	}
	defer db.Close()
	if sub == "list" {
		admins, err := db.FindAdmins(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "keylens admin list: %v\n", err)
			return exitFailed
		}
		for _, a := range admins {
			state := "enabled"
			if a.Disabled {
				state = "disabled"
			}
			fmt.Fprintf(stdout, "%s\t%s\t%s\n", a.ID, a.Email, state)
		}
		return exitOK
	}
	ctx = keylens.WithActor(ctx, keylens.Actor{Name: "keylens admin add", Via: keylens.ViaCommandLine})
	a := &keylens.Admin{Email: email, Password: password}
	if err := db.CreateAdmin(ctx, a); err != nil {
		fmt.Fprintf(stderr, "keylens admin add: %s\n", keylens.ErrorMessage(err))
		if keylens.ErrorCode(err) == keylens.EINTERNAL {
			return exitFailed
		}
		return exitUsage
	}
	fmt.Fprintf(stdout, "added admin %s (%s): sign in to the console at /admin/\n", a.Email, a.ID)
	return exitOK
}

// readPassword prompts twice on a terminal, or reads stdin's first line.
func readPassword(stdout io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(stdout, "Password (at least %d characters): ", keylens.MinAdminPasswordLength)
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stdout)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stdout, "Password again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stdout)
		if err != nil {
			return "", err
		}
		if string(pw) != string(again) {
			return "", errors.New("the two passwords differ")
		}
		return string(pw), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on stdin (give it as the first line, or run on a terminal to be asked)")
	}
	return line, nil
}

const adminUsage = `Usage:
  keylens admin add EMAIL [--store DSN]   add an admin account of the console; the password is asked for
                                          (or read as the first line of stdin)
  keylens admin list [--store DSN]        list the admin accounts
`
