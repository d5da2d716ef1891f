package keylens_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

func TestParseGrace(t *testing.T) {
	max := 720 * time.Hour
	for in, want := range map[string]time.Duration{
		"0s": 0, "0": 0, "90m": 90 * time.Minute, " 24h ": 24 * time.Hour, "720h": max, "1h30m": 90 * time.Minute,
	} {
		got, err := keylens.ParseGrace(in)
		if err == nil {
			err = keylens.CheckGrace(got, max)
		}
		if err != nil || got != want {
			t.Errorf("ParseGrace(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "  ", "-1s", "720h0m1s", "721h", "1 hour", "1d", "24", "9999999999999h", "0x10s", "NaN"} {
		d, err := keylens.ParseGrace(in)
		if err == nil {
			err = keylens.CheckGrace(d, max)
		}
		if keylens.ErrorCode(err) != keylens.EINVALID {
			t.Errorf("ParseGrace(%q): %v, want EINVALID", in, err)
		}
	}
}

func TestGraceEnd(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 250_000_000, time.UTC)
	if got := keylens.GraceEnd(now, 0); !got.Equal(now) {
		t.Errorf("no grace ends %v, want now %v", got, now)
	}
	// Rounded up to the whole second: never before now+grace, at most a
	// second after.
	if got, want := keylens.GraceEnd(now, time.Hour), time.Date(2026, 3, 1, 13, 0, 1, 0, time.UTC); !got.Equal(want) {
		t.Errorf("GraceEnd = %v, want %v", got, want)
	}
	whole := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if got := keylens.GraceEnd(whole, time.Minute); !got.Equal(whole.Add(time.Minute)) {
		t.Errorf("GraceEnd from a whole second = %v", got)
	}
	k := &keylens.Key{ExpiresAt: keylens.GraceEnd(now, time.Second)}
	if k.Expired(k.ExpiresAt.Add(-time.Nanosecond)) || !k.Expired(k.ExpiresAt) || k.ExpiresUnix() != k.ExpiresAt.Unix() {
		t.Errorf("a key resolves until its end, not from it: %+v", k)
	}
	if (&keylens.Key{}).Expired(now) || (&keylens.Key{}).ExpiresUnix() != 0 {
		t.Error("a key not replaced expires")
	}
}

func TestRotateKeepsTheKeysKindAndRequest(t *testing.T) {
	is := keylens.Issuer{OrgID: "5e9d9544a1dcd60001d0ed20", HashAlgorithm: keylens.HashMurmur64, Now: time.Now()}
	old := &keylens.Key{Hash: "0123456789abcdef", DeveloperID: "dev1", Policies: []string{"gold", "silver"}, RequestID: "req1",
		Fields: map[string]any{"use": "billing"}}
	for _, kind := range []string{keylens.AuthToken, keylens.AuthBasic} {
		issued, err := is.Rotate(old, kind, keylens.KeyRotation{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		k, a := issued.Key, issued.Approval
		if k.AuthType != kind || k.DeveloperID != "dev1" || strings.Join(k.Policies, ",") != "gold,silver" || k.RequestID != "req1" ||
			k.Fields["use"] != "billing" || k.Hash == old.Hash || a.RawKey == "" || (kind == keylens.AuthBasic) != (a.Password != "") {
			t.Errorf("%s: %+v %+v", kind, k, a)
		}
	}
	// The key's own kind wins over the catalogue's.
	old.AuthType = keylens.AuthBasic
	if issued, err := is.Rotate(old, keylens.AuthToken, keylens.KeyRotation{}, nil); err != nil || issued.Key.AuthType != keylens.AuthBasic {
		t.Errorf("basic key rotated as %+v, %v", issued, err)
	}
	for name, c := range map[string]struct {
		key  keylens.Key
		kind string
	}{
		"oauth":       {keylens.Key{Policies: []string{"p"}}, keylens.AuthOAuth},
		"no kind":     {keylens.Key{Policies: []string{"p"}}, ""},
		"no policies": {keylens.Key{AuthType: keylens.AuthToken}, ""},
	} {
		if _, err := is.Rotate(&c.key, c.kind, keylens.KeyRotation{}, nil); keylens.ErrorCode(err) != keylens.EINVALID {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzParseGrace: any text is a grace within bounds or EINVALID, never a
// panic or another error.
func FuzzParseGrace(f *testing.F) {
	for _, s := range []string{"0s", "72h", "-1s", "721h", "1.5h", "", "9223372036854775807ns", "1e3h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := keylens.ParseGrace(s)
		if err == nil {
			err = keylens.CheckGrace(d, keylens.DefaultMaxRotationGrace)
		}
		if err != nil {
			if keylens.ErrorCode(err) != keylens.EINVALID {
				t.Fatalf("ParseGrace(%q): %v", s, err)
			}
			return
		}
		if d < 0 || d > keylens.DefaultMaxRotationGrace {
			t.Fatalf("ParseGrace(%q) = %v, outside 0 to the most", s, d)
		}
	})
}
