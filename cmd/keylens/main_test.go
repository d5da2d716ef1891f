package main

import (
	"bytes"
	"strings"
	"testing"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestParseFlags_Precedence(t *testing.T) {
	m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	err := m.ParseFlags([]string{"--admin-addr", "127.0.0.1:4000"}, env(map[string]string{
		"KEYLENS_ADMIN_ADDR": "127.0.0.1:5000",
		"KEYLENS_STORE":      "sqlite:/tmp/from-env.db",
		"KEYLENS_ADMIN_KEY":  "key-from-the-environment",
	}))
	if err != nil {
		t.Fatal(err)
	}
	c := m.Config
	if c.AdminAddr != "127.0.0.1:4000" {
		t.Errorf("flag did not win over environment: %s", c.AdminAddr)
	}
	if c.Store != "sqlite:/tmp/from-env.db" || c.AdminKey != "key-from-the-environment" {
		t.Errorf("environment not read: %+v", c)
	}
	if c.SidecarAddr != "127.0.0.1:8181" {
		t.Errorf("default sidecar address %s", c.SidecarAddr)
	}
	m = NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	if err := m.ParseFlags(nil, env(map[string]string{"KEYLENS_ORG_ID": "5e9d9544a1dcd60001d0ed20"})); err != nil || m.Config.OrgID != "5e9d9544a1dcd60001d0ed20" {
		t.Errorf("KEYLENS_ORG_ID: %q, %v", m.Config.OrgID, err)
	}
}

func TestParseFlags_DefaultsAreValid(t *testing.T) {
	m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	if err := m.ParseFlags(nil, env(nil)); err != nil {
		t.Fatal(err)
	}
	if m.Config.Store != "sqlite:./data/keylens.db" || m.Config.AdminAddr != "127.0.0.1:3000" {
		t.Errorf("defaults: %+v", m.Config)
	}
}

func TestRun_ExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"no command", nil, exitUsage, "Usage"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"version", []string{"version"}, exitOK, "keylens dev"},
		{"serve help", []string{"serve", "-h"}, exitOK, "KEYLENS_"},
		{"every problem at once", []string{"serve", "--store", "x", "--admin-addr", "y", "--sidecar-addr", "y", "--log-format", "xml", "extra"}, exitUsage,
			"--store"},
		{"portal without admin key", []string{"sidecar", "--portal", "http://127.0.0.1:3000"}, exitUsage, "--portal needs --admin-key"},
		{"portal not a URL", []string{"sidecar", "--portal", "127.0.0.1:3000", "--admin-key", "0123456789abcdef"}, exitUsage, "--portal:"},
		{"portal and store", []string{"sidecar", "--portal", "http://p:3000", "--admin-key", "0123456789abcdef", "--store", "sqlite:x.db"}, exitUsage, "--portal and --store"},
		{"admin key without portal", []string{"sidecar", "--admin-key", "0123456789abcdef"}, exitUsage, "only used with --portal"},
		{"postgres URL without a host", []string{"serve", "--store", "postgres:///keylens"}, exitUsage, "PostgreSQL URL needs a host"},
		{"portal is sidecar only", []string{"serve", "--portal", "http://p:3000"}, exitUsage, "-portal"},
		{"org id with a quote", []string{"serve", "--org-id", `5e9d"x`}, exitUsage, "--org-id"},
		{"org id with a backslash", []string{"serve", "--org-id", `5e9d\x`}, exitUsage, "no quotes, backslashes or control characters"},
		{"org id is the portal's", []string{"sidecar", "--org-id", "5e9d9544a1dcd60001d0ed20"}, exitUsage, "-org-id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, env(nil), &stdout, &stderr); code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			if out := stdout.String() + stderr.String(); !strings.Contains(out, tt.out) {
				t.Errorf("output lacks %q:\n%s", tt.out, out)
			}
		})
	}
	var stderr bytes.Buffer
	run([]string{"serve", "--store", "x", "--admin-addr", "y", "--sidecar-addr", "y", "--log-format", "xml", "extra"}, env(nil), &bytes.Buffer{}, &stderr)
	for _, want := range []string{"--store", "--admin-addr", "--sidecar-addr", "--log-format", "unexpected arguments"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("problem %s not reported:\n%s", want, stderr.String())
		}
	}
}
