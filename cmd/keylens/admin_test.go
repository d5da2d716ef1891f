package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/sqlstore"
)

func TestAdminAdd(t *testing.T) {
	store := "sqlite:" + filepath.Join(t.TempDir(), "k.db")
	runAdmin := func(input string, args ...string) (int, string, string) {
		stdin = strings.NewReader(input)
		t.Cleanup(func() { stdin = nil })
		var out, errOut bytes.Buffer
		code := run(append([]string{"admin"}, args...), env(map[string]string{"KEYLENS_STORE": store}), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, out, errOut := runAdmin("correct-horse-battery\n", "add", "root@example.com"); code != exitOK || !strings.Contains(out, "added admin root@example.com") {
		t.Fatalf("admin add: %d %q %q", code, out, errOut)
	}
	for _, c := range []struct {
		input string
		args  []string
		code  int
		msg   string
	}{
		{"correct-horse-battery\n", []string{"add", "ROOT@example.com"}, exitUsage, "already exists"},
		{"short\n", []string{"add", "b@example.com"}, exitUsage, "at least 12"},
		{"", []string{"add", "b@example.com"}, exitUsage, "no password on stdin"},
		{"correct-horse-battery\n", []string{"add", "not an email"}, exitUsage, "not valid"},
		{"", []string{"add"}, exitUsage, "Usage"},
		{"", []string{"remove", "x@example.com"}, exitUsage, "Usage"},
	} {
		if code, _, errOut := runAdmin(c.input, c.args...); code != c.code || !strings.Contains(errOut, c.msg) {
			t.Errorf("admin %v: %d %q, want %d %q", c.args, code, errOut, c.code, c.msg)
		}
	}
	if code, out, _ := runAdmin("", "list"); code != exitOK || !strings.Contains(out, "\troot@example.com\tenabled") {
		t.Errorf("admin list: %d %q", code, out)
	}
	db, err := sqlstore.Open(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.VerifyAdmin(context.Background(), "root@example.com", "correct-horse-battery"); err != nil {
		t.Errorf("the added admin cannot sign in: %v", err)
	}
	entries, _, _ := db.FindAudit(context.Background(), keylens.AuditFilter{})
	if len(entries) != 1 || entries[0].Via != keylens.ViaCommandLine || entries[0].Action != keylens.AuditAdminCreated {
		t.Errorf("audit %+v", entries)
	}
}

func TestParseFlags_PublicURL(t *testing.T) {
	for url, ok := range map[string]bool{"https://keylens.example.com": true, "http://127.0.0.1:3000/": true,
		"ftp://x": false, "keylens.example.com": false, "https://user:pw@x.example": false} {
		m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
		err := m.ParseFlags([]string{"--public-url", url}, env(nil))
		if (err == nil) != ok {
			t.Errorf("--public-url %q: %v", url, err)
		}
	}
}
