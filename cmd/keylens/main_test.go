package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens/tykanalytics"
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
		{"portal is sidecar only", []string{"serve", "--portal", "http://p:3000"}, exitUsage, "flag provided but not defined: -portal"},
		{"open /hits on every address", []string{"serve", "--sidecar-addr", "0.0.0.0:8181"}, exitUsage, "needs a secret: set --hits-secret"},
		{"open /hits on a host name", []string{"sidecar", "--sidecar-addr", "gateway-1:8181"}, exitUsage, "needs a secret: set --hits-secret"},
		{"too little room for hits", []string{"serve", "--hits-max-pending", "9999"}, exitUsage, "--hits-max-pending and --hits-max-unfolded must be at least 10000"},
		{"too little room for unfolded hits", []string{"serve", "--hits-max-unfolded", "9999"}, exitUsage, "--hits-max-pending and --hits-max-unfolded must be at least 10000"},
		{"org id with a quote", []string{"serve", "--org-id", `5e9d"x`}, exitUsage, "--org-id"},
		{"org id with a backslash", []string{"serve", "--org-id", `5e9d\x`}, exitUsage, "no quotes, backslashes or control characters"},
		{"org id is the portal's", []string{"sidecar", "--org-id", "5e9d9544a1dcd60001d0ed20"}, exitUsage, "flag provided but not defined: -org-id"},
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

func TestParseFlags_HitsSecretOffLoopback(t *testing.T) {
	for _, tt := range []struct {
		addr, secret string
		ok           bool
	}{
		{"127.0.0.1:8181", "", true}, {"[::1]:8181", "", true}, {"localhost:8181", "", true}, {"127.0.0.2:0", "", true},
		{"0.0.0.0:8181", "", false}, {":8181", "", false}, {"[::]:8181", "", false}, {"10.0.0.5:8181", "", false},
		{"0.0.0.0:8181", "a-secret", true},
	} {
		m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
		err := m.ParseFlags([]string{"--sidecar-addr", tt.addr}, env(map[string]string{"KEYLENS_HITS_SECRET": tt.secret}))
		if (err == nil) != tt.ok {
			t.Errorf("--sidecar-addr %s, secret %q: %v", tt.addr, tt.secret, err)
		}
	}
}

// TestParseFlags_Tyk: the Tyk analytics settings from flags or KEYLENS_*,
// on serve and sidecar, every problem reported, no password echoed.
func TestParseFlags_Tyk(t *testing.T) {
	for _, cmd := range []bool{false, true} {
		m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
		m.SidecarOnly = cmd
		err := m.ParseFlags([]string{"--tyk-chunk-size", "500"}, env(map[string]string{
			"KEYLENS_TYK_REDIS":         "rediss://:pw@redis.internal:6380/2",
			"KEYLENS_TYK_ANALYTICS_KEY": "analytics-tyk-system-analytics",
			"KEYLENS_TYK_CONSUMER_ID":   "gw-1",
		}))
		if err != nil {
			t.Fatalf("sidecar %v: %v", cmd, err)
		}
		c := m.Config
		if c.TykRedis != "rediss://:pw@redis.internal:6380/2" || c.TykChunkSize != 500 || c.tykConsumerID() != "gw-1" || c.TykPollInterval != 200*time.Millisecond {
			t.Errorf("sidecar %v: %+v", cmd, c)
		}
	}
	m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	if err := m.ParseFlags([]string{"--tyk-redis", "redis://127.0.0.1:6379/0"}, env(nil)); err != nil {
		t.Fatal(err)
	}
	if id := m.Config.tykConsumerID(); !tykanalytics.ValidConsumerID(id) || id != m.Config.tykConsumerID() {
		t.Errorf("derived consumer id %q", id)
	}
	other := m.Config
	other.Store = "sqlite:/elsewhere.db"
	if other.tykConsumerID() == m.Config.tykConsumerID() {
		t.Error("two stores derive the same consumer id")
	}

	var stderr bytes.Buffer
	code := run([]string{"serve", "--tyk-redis", "redis://:s3cret-pw@h:bad/0", "--tyk-chunk-size", "5001", "--tyk-poll-interval", "0s",
		"--tyk-consumer-id", "a/b", "--tyk-analytics-key", " "}, env(nil), &bytes.Buffer{}, &stderr)
	if code != exitUsage {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{"--tyk-redis", "--tyk-chunk-size", "--tyk-poll-interval", "--tyk-consumer-id", "--tyk-analytics-key"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("problem %s not reported:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "s3cret-pw") {
		t.Errorf("the Redis password is echoed:\n%s", stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"sidecar", "--tyk-consumer-id", "gw-1"}, env(nil), &bytes.Buffer{}, &stderr); code != exitUsage ||
		!strings.Contains(stderr.String(), "only used with --tyk-redis") {
		t.Errorf("--tyk-consumer-id without --tyk-redis: %d %s", code, stderr.String())
	}
}

// TestParseFlags_Portal: the developer portal's listener, URL and email
// settings; a bad one is reported without echoing an SMTP password.
func TestParseFlags_Portal(t *testing.T) {
	m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	if err := m.ParseFlags(nil, env(nil)); err != nil || m.Config.PortalAddr != "127.0.0.1:3001" || m.Config.SMTPURL != "" {
		t.Fatalf("defaults: %+v, %v", m.Config, err)
	}
	for _, tt := range []struct {
		args []string
		env  map[string]string
		ok   bool
	}{
		{[]string{"--portal-addr", ""}, nil, true}, // no portal
		{[]string{"--portal-addr", "127.0.0.1:3000"}, nil, false},
		{[]string{"--portal-addr", "nonsense"}, nil, false},
		{[]string{"--portal-url", "https://developers.example.com"}, nil, true},
		{[]string{"--portal-url", "https://developers.example.com/portal"}, nil, false},
		{[]string{"--portal-url", "ftp://x"}, nil, false},
		{[]string{"--smtp-url", "smtps://u:hunter2@mail.example.com", "--mail-from", "portal@example.com"}, nil, true},
		{nil, map[string]string{"KEYLENS_SMTP_URL": "smtp://mail.example.com:2525", "KEYLENS_MAIL_FROM": "p@example.com"}, true},
		{[]string{"--smtp-url", "smtp://u:hunter2@mail.example.com"}, nil, false}, // no sender
		{[]string{"--smtp-url", "http://u:hunter2@mail.example.com", "--mail-from", "portal@example.com"}, nil, false},
	} {
		var stderr bytes.Buffer
		m := NewMain(&bytes.Buffer{}, &stderr)
		err := m.ParseFlags(tt.args, env(tt.env))
		if (err == nil) != tt.ok {
			t.Errorf("%v %v: %v", tt.args, tt.env, err)
		}
		if err != nil && strings.Contains(err.Error()+stderr.String(), "hunter2") {
			t.Errorf("%v: the SMTP password is echoed: %v", tt.args, err)
		}
	}
}

func TestParseFlags_PortalURLNeededForEmailsBeyondLoopback(t *testing.T) {
	args := []string{"--portal-addr", "0.0.0.0:3001", "--smtp-url", "smtp://mail.example.com", "--mail-from", "p@example.com"}
	m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	if err := m.ParseFlags(args, env(nil)); err == nil || !strings.Contains(err.Error(), "--portal-url") {
		t.Errorf("emails with links to 0.0.0.0: %v", err)
	}
	m = NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	if err := m.ParseFlags(append(args, "--portal-url", "https://developers.example.com"), env(nil)); err != nil {
		t.Error(err)
	}
}

func TestParseFlags_TykGateway(t *testing.T) {
	m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	err := m.ParseFlags([]string{"--tyk-gateway", "http://tyk:8080", "--tyk-inactive-policy", "off"},
		env(map[string]string{"KEYLENS_TYK_SECRET": "gw-secret"}))
	if err != nil || m.Config.TykSecret != "gw-secret" || m.Config.TykGateway != "http://tyk:8080" || m.Config.TykInactivePolicy != "off" {
		t.Fatalf("%v %+v", err, m.Config)
	}
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--tyk-gateway", "http://tyk:8080"}, nil, "secret is empty"},
		{[]string{"--tyk-gateway", "http://user:pa55word@tyk:8080"}, map[string]string{"KEYLENS_TYK_SECRET": "s"}, "without credentials"},
		{[]string{"--tyk-secret", "s"}, nil, "only used with --tyk-gateway"},
		{[]string{"--tyk-inactive-policy", "off"}, nil, "only used with --tyk-gateway"},
	} {
		var stderr bytes.Buffer
		code := run(append([]string{"serve"}, tt.args...), env(tt.env), &bytes.Buffer{}, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tt.want) || strings.Contains(stderr.String(), "pa55word") {
			t.Errorf("%v: exit %d\n%s", tt.args, code, stderr.String())
		}
	}
	var stderr bytes.Buffer
	if code := run([]string{"sidecar", "--tyk-gateway", "http://tyk:8080"}, env(nil), &bytes.Buffer{}, &stderr); code != exitUsage {
		t.Errorf("keylens sidecar accepted --tyk-gateway: %d", code)
	}
	if code := run([]string{"tyk", "sync", "--tyk-gateway", "http://tyk:8080"}, env(nil), &bytes.Buffer{}, &stderr); code != exitUsage ||
		!strings.Contains(stderr.String(), "secret is empty") {
		t.Errorf("tyk sync without a secret: %d %s", code, stderr.String())
	}
	if code := run([]string{"tyk", "frob"}, env(nil), &bytes.Buffer{}, &stderr); code != exitUsage {
		t.Errorf("tyk frob: %d", code)
	}
}

// TestParseFlags_EnvironmentAndFlagProblemsTogether: a bad flag does not
// hide a bad KEYLENS_* variable.
func TestParseFlags_EnvironmentAndFlagProblemsTogether(t *testing.T) {
	m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	err := m.ParseFlags([]string{"--cache-size", "many"}, env(map[string]string{"KEYLENS_CACHE_TTL": "long"}))
	if err == nil || !strings.Contains(err.Error(), "KEYLENS_CACHE_TTL") || !strings.Contains(err.Error(), "-cache-size") {
		t.Errorf("%v", err)
	}
}

func TestParseFlags_MaxRotationGrace(t *testing.T) {
	m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	if err := m.ParseFlags(nil, env(nil)); err != nil || m.Config.MaxRotationGrace != 720*time.Hour {
		t.Errorf("default: %v, %v", m.Config.MaxRotationGrace, err)
	}
	for _, ok := range []string{"0s", "1s", "24h", "8760h"} {
		m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
		if err := m.ParseFlags([]string{"--max-rotation-grace", ok}, env(nil)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	m = NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	if err := m.ParseFlags(nil, env(map[string]string{"KEYLENS_MAX_ROTATION_GRACE": "48h"})); err != nil || m.Config.MaxRotationGrace != 48*time.Hour {
		t.Errorf("from the environment: %v, %v", m.Config.MaxRotationGrace, err)
	}
	for _, bad := range []string{"-1s", "8761h", "a week"} {
		m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
		if err := m.ParseFlags([]string{"--max-rotation-grace", bad}, env(nil)); err == nil || !strings.Contains(err.Error(), "max-rotation-grace") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
