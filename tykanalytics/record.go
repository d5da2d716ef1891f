// Package tykanalytics consumes the analytics records a Tyk gateway writes
// to Redis and counts them in keylens's hit pipeline, so that an
// unmodified gateway feeds the per-key analytics (the aggregate endpoint,
// developer usage, Prometheus) with no record lost and none counted twice.
//
// A Consumer moves a chunk of records atomically from a gateway list into
// a processing list of its own, folds the chunk into series, commits them
// through the analytics committer under the chunk's id (which the store
// applies once, even across restarts), and only then deletes the chunk.
// Records it cannot count go to a bounded dead-letter list.
package tykanalytics

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/keylens/keylens/identity/hits"
)

// Record is what keylens reads of a Tyk analytics record; the rest of it
// is skipped without being decoded.
type Record struct {
	// APIKey is the key's hash when the gateway hashes keys, else the
	// key as stored; "00000000" or "" when the request had no session.
	APIKey       string
	APIID        string
	ResponseCode int
	TimeStamp    time.Time
	// RequestTime is the request's latency in milliseconds.
	RequestTime int64
}

// ErrMalformed wraps every reason a record cannot be read.
var ErrMalformed = errors.New("malformed Tyk analytics record")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

var (
	errTruncated = malformed("truncated")
	errTooDeep   = malformed("nested deeper than %d", maxDepth)
)

// maxDepth bounds the nesting of the members skipped: a real record nests
// three deep (Geo.City.Names); a hostile one must not recurse without end.
const maxDepth = 32

// internMax bounds each intern table; a table that fills is cleared.
const internMax = 4096

// Decoder reads records. It keeps its buffers between records and interns
// the key and API strings it returns, so that decoding a stream of records
// allocates next to nothing. A Decoder is not safe for concurrent use.
//
// The members keylens needs are decoded by the msgpack library; the
// record's layout (the map, its member names, the members skipped) is
// walked directly over the bytes, which is what makes a record cost about
// a microsecond and a hostile one neither memory nor deep recursion.
type Decoder struct {
	b    string         // the record
	r    strings.Reader // over b, at the decoder's position
	dec  *msgpack.Decoder
	keys map[string]string
	apis map[string]string
}

// NewDecoder returns a decoder.
func NewDecoder() *Decoder {
	return &Decoder{dec: msgpack.NewDecoder(nil), keys: make(map[string]string), apis: make(map[string]string)}
}

// Decode reads one record from b, an element of a gateway's analytics
// list: a msgpack map keyed by Go field name. Members it does not need,
// and members it does not know, are skipped. Any error wraps ErrMalformed.
func (d *Decoder) Decode(b string, rec *Record) error {
	*rec = Record{}
	d.b = b
	d.r.Reset(b)
	d.dec.Reset(&d.r)
	n, pos, err := mapHeader(b, 0)
	if err != nil {
		return err
	}
	for range n {
		if pos >= len(b) {
			return errTruncated
		}
		// A member's name: a Go field name is a short string.
		var name string
		if c := b[pos]; c >= 0xa0 && c <= 0xbf {
			end := pos + 1 + int(c&0x1f)
			if end > len(b) {
				return errTruncated
			}
			name, pos = b[pos+1:end], end
		} else if pos, err = skip(b, pos, 1); err != nil {
			return err
		}
		end, err := skip(b, pos, 1) // every length the value claims is there
		if err != nil {
			return err
		}
		switch name {
		case "APIKey", "APIID", "ResponseCode", "TimeStamp", "RequestTime":
			d.r.Reset(b[:end])
			_, _ = d.r.Seek(int64(pos), io.SeekStart)
			if err := d.member(name, rec); err != nil {
				return d.wrap(err)
			}
			if d.r.Len() != 0 {
				return malformed("member %s: %d bytes left in its value", name, d.r.Len())
			}
		}
		pos = end
	}
	if pos != len(b) {
		return malformed("%d bytes after the record", len(b)-pos)
	}
	return nil
}

// member decodes the value of a member keylens reads from d.r.
func (d *Decoder) member(name string, rec *Record) (err error) {
	switch name {
	case "APIKey":
		rec.APIKey, err = d.string(hits.MaxKey, d.keys)
	case "APIID":
		rec.APIID, err = d.string(hits.MaxAPIID, d.apis)
	case "ResponseCode":
		var v int64
		v, err = d.dec.DecodeInt64()
		rec.ResponseCode = int(max(min(v, 1<<20), -1)) // out of range either way
	case "TimeStamp":
		rec.TimeStamp, err = d.dec.DecodeTime()
	case "RequestTime":
		rec.RequestTime, err = d.dec.DecodeInt64()
	}
	return err
}

// wrap makes a decoding failure an ErrMalformed.
func (d *Decoder) wrap(err error) error {
	switch {
	case errors.Is(err, ErrMalformed):
		return err
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errTruncated
	}
	return malformed("%v", err)
}

// string reads a string member of at most limit bytes, nil as "",
// interned in table.
func (d *Decoder) string(limit int, table map[string]string) (string, error) {
	n, err := d.dec.DecodeBytesLen()
	switch {
	case err != nil:
		return "", err
	case n <= 0:
		return "", nil
	case n > d.r.Len():
		return "", errTruncated
	case n > limit:
		return "", malformed("a string of %d bytes where at most %d are expected", n, limit)
	}
	pos := int(d.r.Size()) - d.r.Len() // d.r reads a prefix of d.b
	v := d.b[pos : pos+n]
	_, _ = d.r.Seek(int64(n), io.SeekCurrent)
	if s, ok := table[v]; ok {
		return s, nil
	}
	if len(table) >= internMax {
		clear(table)
	}
	s := strings.Clone(v) // not a slice of the record, which it would keep alive
	table[s] = s
	return s, nil
}

// mapHeader reads the header of a map at b[pos:]: its member count and
// where its first member starts.
func mapHeader(b string, pos int) (n, next int, err error) {
	if pos >= len(b) {
		return 0, 0, errTruncated
	}
	switch c := b[pos]; {
	case c >= 0x80 && c <= 0x8f:
		n, next = int(c&0x0f), pos+1
	case c == 0xde || c == 0xdf:
		w := 2 << (c - 0xde) // 2 or 4 bytes of length
		if pos+1+w > len(b) {
			return 0, 0, errTruncated
		}
		n, next = int(uintN(b[pos+1:], w)), pos+1+w
	default:
		return 0, 0, malformed("not a map (msgpack code %#x)", c)
	}
	if n > len(b)-next { // every member takes two bytes at least
		return 0, 0, errTruncated
	}
	return n, next, nil
}

// skip returns where the value at b[pos:], nested at depth, ends, checking
// every length it claims against the bytes there, so that a hostile record
// can neither allocate nor recurse much.
func skip(b string, pos, depth int) (int, error) {
	if pos >= len(b) {
		return 0, errTruncated
	}
	c := b[pos]
	var head, size, elems int // header bytes, payload bytes, nested values
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return pos + 1, nil
	case c <= 0x8f:
		head, elems = 1, 2*int(c&0x0f)
	case c <= 0x9f:
		head, elems = 1, int(c&0x0f)
	case c <= 0xbf:
		head, size = 1, int(c&0x1f)
	default:
		switch c {
		case 0xc4, 0xd9: // bin8, str8
			head = 2
		case 0xc5, 0xda: // bin16, str16
			head = 3
		case 0xc6, 0xdb: // bin32, str32
			head = 5
		case 0xc7, 0xc8, 0xc9: // ext8, ext16, ext32: length, then a type byte
			head = 1 + (1 << (c - 0xc7)) + 1
		case 0xca, 0xd2, 0xce: // float32, int32, uint32
			return need(b, pos+5)
		case 0xcb, 0xd3, 0xcf: // float64, int64, uint64
			return need(b, pos+9)
		case 0xcc, 0xd0: // uint8, int8
			return need(b, pos+2)
		case 0xcd, 0xd1: // uint16, int16
			return need(b, pos+3)
		case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16: a type byte, then data
			return need(b, pos+2+(1<<(c-0xd4)))
		case 0xdc, 0xdd: // array16, array32
			head = 1 + 2<<(c-0xdc)
		case 0xde, 0xdf: // map16, map32
			head = 1 + 2<<(c-0xde)
		default: // 0xc1, never used
			return 0, malformed("invalid msgpack code %#x", c)
		}
		if pos+head > len(b) {
			return 0, errTruncated
		}
		w := head - 1
		if c >= 0xc7 && c <= 0xc9 {
			w-- // the ext type byte
		}
		n := int(uintN(b[pos+1:], w))
		switch c {
		case 0xdc, 0xdd:
			elems = n
		case 0xde, 0xdf:
			elems = 2 * n
		default:
			size = n
		}
	}
	pos += head
	if size > 0 || elems == 0 {
		return need(b, pos+size)
	}
	if elems > len(b)-pos { // every value takes a byte at least
		return 0, errTruncated
	}
	if depth >= maxDepth {
		return 0, errTooDeep
	}
	var err error
	for range elems {
		if pos, err = skip(b, pos, depth+1); err != nil {
			return 0, err
		}
	}
	return pos, nil
}

// need returns end if b holds it.
func need(b string, end int) (int, error) {
	if end > len(b) || end < 0 {
		return 0, errTruncated
	}
	return end, nil
}

// uintN reads a big-endian unsigned integer of w (1, 2 or 4) bytes.
func uintN(b string, w int) uint64 {
	var v uint64
	for i := range w {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// ErrUncountable wraps the reasons a well-formed record cannot be counted.
var ErrUncountable = errors.New("uncountable Tyk analytics record")

func uncountable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUncountable, fmt.Sprintf(format, args...))
}
