// Package tyktest is a double of what a Tyk gateway writes for analytics,
// for tests: its analytics record encoded as the gateway encodes it
// (docs/tyk-facts.md), a writer that pushes records to Redis as the gateway's purger does,
// and a throwaway redis-server on a loopback port.
//
// It is built from the facts of the record format, not from Tyk's code:
// the tests check that it re-encodes the real records in
// tests/testdata/tyk-analytics byte for byte.
package tyktest

import (
	"bytes"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Record is a Tyk analytics record (tyk-pump analytics.AnalyticsRecord at
// the version the gateway pins), field for field and in the same order:
// the gateway's msgpack encoder writes every struct as a map keyed by Go
// field name.
type Record struct {
	Method         string
	Host           string
	Path           string
	RawPath        string
	ContentLength  int64
	UserAgent      string
	Day            int
	Month          time.Month
	Year           int
	Hour           int
	ResponseCode   int
	APIKey         string
	TimeStamp      Time
	APIVersion     string
	APIName        string
	APIID          string
	OrgID          string
	OauthID        string
	RequestTime    int64
	RawRequest     string
	RawResponse    string
	IPAddress      string
	Geo            GeoData
	Network        NetworkStats
	Latency        Latency
	Tags           []string
	Alias          string
	TrackPath      bool
	ExpireAt       Time
	ApiSchema      string //nolint:revive // Tyk's spelling
	OriginalPath   string
	ListenPath     string
	GraphQLStats   GraphQLStats
	MCPStats       MCPStats
	CollectionName string
}

// GeoData is the record's Geo member.
type GeoData struct {
	Country struct {
		ISOCode string
	}
	City struct {
		GeoNameID uint
		Names     map[string]string
	}
	Location struct {
		Latitude  float64
		Longitude float64
		TimeZone  string
	}
}

// NetworkStats is the record's Network member.
type NetworkStats struct {
	OpenConnections  int64
	ClosedConnection int64
	BytesIn          int64
	BytesOut         int64
}

// Latency is the record's Latency member, in milliseconds.
type Latency struct {
	Total    int64
	Upstream int64
	Gateway  int64
}

// GraphQLStats is the record's GraphQLStats member.
type GraphQLStats struct {
	Variables     string
	RootFields    []string
	Types         map[string][]string
	Errors        []GraphError
	OperationType int
	HasErrors     bool
	IsGraphQL     bool
}

// GraphError is one GraphQL error of a record.
type GraphError struct {
	Message string
	Path    []any
}

// MCPStats is the record's MCPStats member.
type MCPStats struct {
	IsMCP         bool
	JSONRPCMethod string
	PrimitiveType string
	PrimitiveName string
}

// Time is a time.Time encoded as the gateway's msgpack library encodes
// one: a two-element array [unix seconds, nanoseconds].
type Time struct{ time.Time }

// EncodeMsgpack writes t as [seconds, nanoseconds].
func (t Time) EncodeMsgpack(e *msgpack.Encoder) error {
	if err := e.EncodeArrayLen(2); err != nil {
		return err
	}
	if err := e.EncodeInt(t.Unix()); err != nil {
		return err
	}
	return e.EncodeInt(int64(t.Nanosecond()))
}

// DecodeMsgpack reads what EncodeMsgpack writes, as UTC.
func (t *Time) DecodeMsgpack(d *msgpack.Decoder) error {
	v, err := d.DecodeTime()
	t.Time = v.UTC()
	return err
}

// Request is what a test says about one request; NewRecord fills in the
// rest as the gateway would.
type Request struct {
	APIKey  string // the key hash with hash_keys on; "00000000" for no session
	APIID   string
	OrgID   string
	Code    int
	At      time.Time
	Latency time.Duration
	Path    string
}

// NewRecord returns the record a gateway writes for r, with the members a
// real one carries (tags, geo, network, expiry).
func NewRecord(r Request) Record {
	at := r.At.UTC()
	ms := r.Latency.Milliseconds()
	rec := Record{
		Method: "GET", Host: "127.0.0.1:8080", Path: r.Path, RawPath: r.Path, UserAgent: "curl/7.88.1",
		Day: at.Day(), Month: at.Month(), Year: at.Year(), Hour: at.Hour(), ResponseCode: r.Code,
		APIKey: r.APIKey, TimeStamp: Time{at}, APIVersion: "Non Versioned", APIName: r.APIID, APIID: r.APIID,
		OrgID: r.OrgID, RequestTime: ms, IPAddress: "127.0.0.1",
		Latency:  Latency{Total: ms, Upstream: ms / 2, Gateway: ms - ms/2},
		Tags:     []string{"key-" + r.APIKey, "org-" + r.OrgID, "api-" + r.APIID},
		ExpireAt: Time{at.AddDate(100, 0, 0)}, OriginalPath: r.Path, ListenPath: "/",
	}
	return rec
}

// Encode returns rec's bytes as the gateway writes them to Redis.
func Encode(rec Record) []byte {
	var b bytes.Buffer
	enc := msgpack.NewEncoder(&b)
	enc.UseCompactInts(true) // the gateway's encoder writes every integer in its smallest form
	if err := enc.Encode(&rec); err != nil {
		panic(err) // every member has a fixed type: cannot fail
	}
	return b.Bytes()
}

// Decode reads a record as Encode writes it.
func Decode(b []byte) (Record, error) {
	var rec Record
	err := msgpack.Unmarshal(b, &rec)
	return rec, err
}
