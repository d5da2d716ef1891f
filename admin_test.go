package keylens

import (
	"testing"
	"time"
)

func TestSessionExpiry(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name          string
		created, seen time.Time
		now           time.Time
		expired       bool
	}{
		{"JustSignedIn", t0, t0, t0, false},
		{"IdleJustUnder30Minutes", t0, t0, t0.Add(SessionIdleTimeout - time.Second), false},
		{"Idle30Minutes", t0, t0, t0.Add(SessionIdleTimeout), true},
		{"BusyButOlderThan12Hours", t0, t0.Add(12*time.Hour - time.Minute), t0.Add(12 * time.Hour), true},
		{"BusyAt11h59", t0, t0.Add(11*time.Hour + 50*time.Minute), t0.Add(11*time.Hour + 59*time.Minute), false},
	} {
		s := Session{Created: c.created, LastSeen: c.seen}
		if got := s.Expired(c.now); got != c.expired {
			t.Errorf("%s: Expired = %t, want %t", c.name, got, c.expired)
		}
	}
}

func TestDeveloperPatchLeavesTheCurrentDeveloperAlone(t *testing.T) {
	cur := &Developer{ID: "x", Email: "a@example.com", Fields: map[string]string{"Name": "Ada"},
		Keys: map[string][]string{"k": {"p"}}, PasswordHash: "$2a$10$x"}
	email, off := "b@example.com", true
	next := (&DeveloperPatch{Email: &email, Fields: map[string]string{"Company": "Acme"}, Inactive: &off}).Apply(cur)
	next.Keys["k2"] = []string{"q"}
	if cur.Email != "a@example.com" || len(cur.Fields) != 1 || cur.Inactive || len(cur.Keys) != 1 {
		t.Errorf("Apply changed its input: %+v", cur)
	}
	if next.Email != email || next.Fields["Company"] != "Acme" || len(next.Fields) != 1 || !next.Inactive || next.PasswordHash != "" {
		t.Errorf("patched %+v", next)
	}
	if got := DeveloperChanges(cur, next); got != "email a@example.com → b@example.com; fields Company, Name (removed); deactivated; password changed; keys: 1 added, 0 removed, 0 with other policies" {
		t.Errorf("DeveloperChanges = %q", got)
	}
}
