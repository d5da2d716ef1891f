package tyktest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestEncodeMatchesTheGateway: every real record, decoded into Record and
// encoded again, comes out byte for byte as the gateway wrote it, so the
// records tests build are the gateway's format.
func TestEncodeMatchesTheGateway(t *testing.T) {
	files := Fixtures(t)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := Decode(raw)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		if got := Encode(rec); !bytes.Equal(got, raw) {
			t.Errorf("%s: re-encoded differs from the gateway's bytes:\n got %x\nwant %x", filepath.Base(f), got, raw)
		}
	}
}

func TestNewRecordRoundTrips(t *testing.T) {
	r := NewRecord(Request{APIKey: "dd072c63751ba72b", APIID: "api", OrgID: "org", Code: 200, Path: "/x"})
	back, err := Decode(Encode(r))
	if err != nil || back.APIKey != r.APIKey || back.ResponseCode != 200 || !back.TimeStamp.Equal(r.TimeStamp.Time) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}
