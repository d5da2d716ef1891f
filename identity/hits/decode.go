package hits

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strconv"
	"time"
	"unicode/utf8"
)

// decode decodes a POST /hits body, a JSON array of hits, exactly as
// encoding/json would: decodeFast reads the shape writers send (Encode's),
// and anything it does not read is left to encoding/json (decodeJSON), for
// its results and its errors. encoding/json costs over 2 µs an element,
// which under a flood of 10,000-element bodies is much of what two cores
// can do.
func decode(body []byte) ([]Hit, error) {
	if in, ok := decodeFast(body); ok {
		return in, nil
	}
	return decodeJSON(body)
}

// decodeJSON decodes body with encoding/json: the reference decodeFast
// agrees with, and what words the errors.
func decodeJSON(body []byte) ([]Hit, error) {
	var in []Hit
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&in); err != nil {
		return nil, invalid("malformed hits: %v", err)
	}
	if dec.More() {
		return nil, invalid("malformed hits: data after the array")
	}
	return in, nil
}

// decodeFast decodes body as encoding/json would into []Hit when body
// holds only what it reads: an array (no space around it) of objects whose
// members are strings without escapes, integers for code and count, a
// number for latency_ms, an RFC 3339 string for time, or null, with JSON's
// whitespace between tokens; members of other names are skipped (their
// values may nest). ok is false for anything else, among it every body
// encoding/json refuses: escapes, member names that encoding/json would
// match only case-insensitively (or that are not ASCII, which it folds
// too), numbers that are not integers in range where an integer goes,
// more than MaxPerRequest elements, data after the array.
//
// Member by member it does what encoding/json does: a later duplicate
// wins, null leaves a string or code as it was and a pointer member nil,
// a time is what time.Time's UnmarshalJSON makes of it (parseUTC reads
// Encode's times to the same), and strings that are not valid UTF-8
// (which encoding/json would change) are left to it.
func decodeFast(body []byte) (in []Hit, ok bool) {
	if len(body) == 0 || body[0] != '[' {
		return nil, false
	}
	// Every element is an object, so the body's '{' bound the elements
	// ('{' in strings and nested values only add to the count).
	n := min(bytes.Count(body, []byte{'{'}), MaxPerRequest)
	d := fastDecoder{b: body, i: 1, n: n}
	in = make([]Hit, 0, n)
	d.space()
	if d.next() == ']' {
		d.i++
		return in, d.i == len(d.b)
	}
	for {
		if len(in) == n || d.next() != '{' {
			return nil, false
		}
		in = append(in, Hit{})
		if h := &in[len(in)-1]; !d.encoded(h, len(in)-1) && !d.object(h, len(in)-1) {
			return nil, false
		}
		d.space()
		switch d.next() {
		case ',':
			d.i++
			d.space()
		case ']':
			d.i++
			return in, d.i == len(d.b)
		default:
			return nil, false
		}
	}
}

// fastDecoder is decodeFast's position in its body, and the values that
// the hits' pointer members point to: one slot per element (times[i] is
// element i's time), each array allocated when first needed.
type fastDecoder struct {
	b []byte
	i int // the next byte to read
	n int // the most elements there can be

	times     []time.Time
	counts    []int64
	latencies []float64
	apiIDs    [16]string // api_ids read, by their length and last byte

	// The last minute parseUTC parsed, "2006-01-02T15:04" as two words,
	// and its start in Unix seconds.
	minute     [2]uint64
	minuteUnix int64
	haveMinute bool
}

// slot returns element elem's place in *values, which holds n places (one
// an element) and is allocated when first asked for.
func slot[T any](values *[]T, n, elem int) *T {
	if *values == nil {
		*values = make([]T, n)
	}
	return &(*values)[elem]
}

// maxSkipDepth bounds the nesting of a skipped member's value; deeper ones
// are left to encoding/json.
const maxSkipDepth = 32

// next returns the next byte, 0 at the end (a NUL byte is never valid
// where next is asked either).
func (d *fastDecoder) next() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// space skips JSON's whitespace.
func (d *fastDecoder) space() {
	for d.i < len(d.b) {
		if c := d.b[d.i]; c > ' ' || c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return
		}
		d.i++
	}
}

// The members of a hit, as object reads their names.
const (
	otherMember = iota // a name Hit has no member for: skipped
	keyMember
	apiIDMember
	codeMember
	timeMember
	countMember
	latencyMember
)

// encoded reads the object at d.i into h, element elem of the body, if
// it is written as Encode writes it (appendElement): Hit's members in
// that order, those after code optional, without space. Its names are
// matched whole, and its values read as object reads them. At the first
// byte that differs it leaves d.i and h as they were and returns false,
// for object to read the element.
func (d *fastDecoder) encoded(h *Hit, elem int) bool {
	start := d.i
	if d.literal(`{"key":`) && d.member(h, elem, keyMember) &&
		d.literal(`,"api_id":`) && d.member(h, elem, apiIDMember) &&
		d.literal(`,"code":`) && d.member(h, elem, codeMember) &&
		(!d.literal(`,"time":`) || d.member(h, elem, timeMember)) &&
		(!d.literal(`,"count":`) || d.member(h, elem, countMember)) &&
		(!d.literal(`,"latency_ms":`) || d.member(h, elem, latencyMember)) &&
		d.literal(`}`) {
		return true
	}
	d.i, *h = start, Hit{}
	return false
}

// object reads the object at d.i into h, element elem of the body.
func (d *fastDecoder) object(h *Hit, elem int) bool {
	d.i++ // '{'
	d.space()
	if d.next() == '}' {
		d.i++
		return true
	}
	for {
		m, ok := d.name()
		if !ok || !d.member(h, elem, m) {
			return false
		}
		d.space()
		switch d.next() {
		case ',':
			d.i++
			d.space()
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}

// name reads a member's name and the colon after it, with the space
// around it. ok is false for a name encoding/json might read otherwise:
// one with an escape, one not ASCII, or a case variant of one of Hit's.
func (d *fastDecoder) name() (m int, ok bool) {
	name, ascii, ok := d.plainString()
	if !ok || !ascii {
		return 0, false
	}
	d.space()
	if d.next() != ':' {
		return 0, false
	}
	d.i++
	d.space()
	switch string(name) {
	case "key":
		return keyMember, true
	case "api_id":
		return apiIDMember, true
	case "code":
		return codeMember, true
	case "time":
		return timeMember, true
	case "count":
		return countMember, true
	case "latency_ms":
		return latencyMember, true
	}
	return otherMember, !foldsToMember(name)
}

// member reads the value at d.i of h's member m.
func (d *fastDecoder) member(h *Hit, elem int, m int) bool {
	if d.next() == 'n' && m != otherMember {
		// null, as encoding/json reads it: a pointer member is set to
		// nil, others are left as they were.
		switch m {
		case timeMember:
			h.Time = nil
		case countMember:
			h.Count = nil
		case latencyMember:
			h.LatencyMS = nil
		}
		return d.literal("null")
	}
	switch m {
	case keyMember:
		return d.stringInto(&h.Key, false)
	case apiIDMember:
		return d.stringInto(&h.APIID, true)
	case codeMember:
		v, ok := d.integer()
		if !ok || int64(int(v)) != v { // (out of an int's range only where an int has 32 bits)
			return false
		}
		h.Code = int(v)
	case countMember:
		v, ok := d.integer()
		if !ok {
			return false
		}
		h.Count = slot(&d.counts, d.n, elem)
		*h.Count = v
	case latencyMember:
		lit, ok := d.number()
		if !ok {
			return false
		}
		v, ok := exactFloat(lit)
		if !ok {
			// What encoding/json does with a number for a float64.
			var err error
			if v, err = strconv.ParseFloat(string(lit), 64); err != nil {
				return false
			}
		}
		h.LatencyMS = slot(&d.latencies, d.n, elem)
		*h.LatencyMS = v
	case timeMember:
		t := slot(&d.times, d.n, elem)
		if v, n, ok := d.parseUTC(d.b[d.i:]); ok {
			*t, d.i = v, d.i+n
		} else {
			start := d.i
			if _, _, ok := d.plainString(); !ok {
				return false
			}
			// encoding/json hands time.Time the string's JSON text,
			// quotes and all.
			if err := t.UnmarshalJSON(d.b[start:d.i]); err != nil {
				return false
			}
		}
		h.Time = t
	default:
		return d.skip(0)
	}
	return true
}

// parseUTC reads the JSON string at the start of b if it is a time as
// Encode writes it, "2006-01-02T15:04:05.999999999Z" with from none to
// nine fractional digits, returning what time.Time's UnmarshalJSON would
// (time.Date in UTC: see parseRFC3339 in package time) and the bytes read.
// ok is false for any other string, which UnmarshalJSON then reads. It
// saves most of UnmarshalJSON's cost, and more as a body's times mostly
// fall in one minute (a Batcher sends what was counted since its last
// flush): the time up to the minute is parsed once per minute met.
func (d *fastDecoder) parseUTC(b []byte) (t time.Time, n int, ok bool) {
	if len(b) < len(`"2006-01-02T15:04:05Z"`) || b[0] != '"' || b[17] != ':' {
		return time.Time{}, 0, false
	}
	if prefix := [2]uint64{binary.LittleEndian.Uint64(b[1:]), binary.LittleEndian.Uint64(b[9:])}; !d.haveMinute || prefix != d.minute {
		year, ok1 := atoi(b[1:5])
		month, ok2 := atoi(b[6:8])
		day, ok3 := atoi(b[9:11])
		hour, ok4 := atoi(b[12:14])
		minute, ok5 := atoi(b[15:17])
		if !(ok1 && ok2 && ok3 && ok4 && ok5) || b[5] != '-' || b[8] != '-' || b[11] != 'T' || b[14] != ':' ||
			month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 {
			return time.Time{}, 0, false
		}
		d.minute, d.haveMinute = prefix, true
		d.minuteUnix = time.Date(year, time.Month(month), day, hour, minute, 0, 0, time.UTC).Unix()
	}
	sec, ok := atoi(b[18:20])
	nsec, i := 0, 20
	if b[i] == '.' {
		digits := 0
		for _, c := range b[21:min(len(b), 30)] { // at most nine digits
			if c < '0' || c > '9' {
				break
			}
			nsec = nsec*10 + int(c-'0')
			digits++
		}
		if digits == 0 {
			return time.Time{}, 0, false
		}
		for range 9 - digits { // nanoseconds from the digits given
			nsec *= 10
		}
		i += 1 + digits
	}
	if !ok || sec > 59 || i+1 >= len(b) || b[i] != 'Z' || b[i+1] != '"' {
		return time.Time{}, 0, false
	}
	// What time.Date returns for the same time: Date and Unix both make
	// it with unixTime, and UTC sets the location Date sets.
	return time.Unix(d.minuteUnix+int64(sec), int64(nsec)).UTC(), i + 2, true
}

// atoi is the decimal number s, if s is digits.
func atoi(s []byte) (n int, ok bool) {
	for _, c := range s {
		if c -= '0'; c > 9 { // (below '0' wraps to above 9)
			return 0, false
		}
		n = n*10 + int(c)
	}
	return n, true
}

// daysIn is the number of days of month (1-12) in year.
func daysIn(month, year int) int {
	if month == 2 && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		return 29
	}
	return int([...]byte{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[month-1])
}

// foldsToMember reports whether encoding/json would take the ASCII member
// name, not one of Hit's, for one of Hit's: it matches names
// case-insensitively.
func foldsToMember(name []byte) bool {
	for _, m := range [...]string{"key", "api_id", "code", "time", "latency_ms", "count"} {
		if len(name) == len(m) && bytes.EqualFold(name, []byte(m)) {
			return true
		}
	}
	return false
}

// stringInto reads a string at d.i into *dst. The string is copied: a
// body's buffer is reused once answered. An api_id shares the copy of the
// same api_id earlier in the body, if it is still in d.apiIDs (a body's
// elements name few APIs).
func (d *fastDecoder) stringInto(dst *string, apiID bool) bool {
	s, ascii, ok := d.plainString()
	if !ok || !ascii && !utf8.Valid(s) {
		return false
	}
	if !apiID || len(s) == 0 {
		*dst = string(s)
		return true
	}
	c := &d.apiIDs[(len(s)+int(s[len(s)-1]))%len(d.apiIDs)]
	if *c != string(s) {
		*c = string(s)
	}
	*dst = *c
	return true
}

// plainString reads the string at d.i, returning its contents (aliasing
// the body) and whether they are all ASCII. ok is false for anything but
// a string, and for a string with an escape (or that JSON refuses).
func (d *fastDecoder) plainString() (s []byte, ascii, ok bool) {
	if d.next() != '"' {
		return nil, false, false
	}
	start := d.i + 1
	i := start
	// Eight bytes at a time while none is a quote, a backslash, a control
	// character or not ASCII (the bit tricks of "Bit Twiddling Hacks":
	// a word has a zero byte, or one less than n, when
	// (x - n*ones) &^ x & highs is not 0); then byte by byte.
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(d.b); i += 8 {
		x := binary.LittleEndian.Uint64(d.b[i:])
		q, bs := x^'"'*ones, x^'\\'*ones
		if m := ((q-ones)&^q | (bs-ones)&^bs | (x-0x20*ones)&^x | x) & highs; m != 0 {
			// The lowest byte flagged is the first such byte (a borrow
			// only flags bytes above the one that caused it).
			i += bits.TrailingZeros64(m) / 8
			if d.b[i] == '"' {
				d.i = i + 1
				return d.b[start:i], true, true
			}
			break
		}
	}
	var or byte
	for ; i < len(d.b); i++ {
		c := d.b[i]
		if c == '"' {
			d.i = i + 1
			return d.b[start:i], or < utf8.RuneSelf, true
		}
		if c == '\\' || c < 0x20 {
			return nil, false, false
		}
		or |= c
	}
	return nil, false, false
}

// number reads the JSON number at d.i, returning its text.
func (d *fastDecoder) number() (lit []byte, ok bool) {
	b, i := d.b, d.i
	digits := func() bool { // one or more
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return nil, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return nil, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return nil, false
		}
	}
	lit, d.i = b[d.i:i], i
	return lit, true
}

// exactFloat is strconv.ParseFloat(lit, 64) for the JSON number lit if it
// has at most 15 digits and no exponent: float64 holds its digits as an
// integer exactly, and the power of ten it divides by, so the one rounding
// of the division gives the nearest float64 to lit, as ParseFloat does
// (its own first attempt). ok is false for other numbers.
func exactFloat(lit []byte) (f float64, ok bool) {
	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	var digits uint64
	n, point := 0, len(lit)
	for i, c := range lit {
		switch {
		case '0' <= c && c <= '9':
			digits = digits*10 + uint64(c-'0')
			n++
		case c == '.':
			point = i
		default: // an exponent
			return 0, false
		}
	}
	if n > 15 {
		return 0, false
	}
	f = float64(digits)
	if point < len(lit) {
		f /= pow10[len(lit)-point-1]
	}
	if neg {
		f = -f
	}
	return f, true
}

// pow10 are the powers of ten exactFloat divides by.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// integer reads the digits of a number at d.i, an integer of at most 18
// digits, which any int64 holds. ok is false for longer ones:
// encoding/json refuses them for an int, or takes them only if in range.
func (d *fastDecoder) integer() (v int64, ok bool) {
	b, i := d.b, d.i
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start := i
	for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		v = v*10 + int64(b[i]-'0')
	}
	// A fraction or exponent after the digits is left for the caller to
	// refuse, as it refuses anything but a comma or a brace after a value.
	if i == start || i-start > 18 || b[start] == '0' && i-start > 1 { // not JSON, or large
		return 0, false
	}
	if neg {
		v = -v
	}
	d.i = i
	return v, true
}

// skip reads past the value at d.i, which is depth values deep in a
// skipped member's value.
func (d *fastDecoder) skip(depth int) bool {
	switch c := d.next(); c {
	case '"':
		_, _, ok := d.plainString()
		return ok
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	case '[', '{':
		if depth == maxSkipDepth {
			return false
		}
		end := byte(']')
		if c == '{' {
			end = '}'
		}
		d.i++
		d.space()
		if d.next() == end {
			d.i++
			return true
		}
		for {
			if c == '{' {
				if _, _, ok := d.plainString(); !ok {
					return false
				}
				d.space()
				if d.next() != ':' {
					return false
				}
				d.i++
				d.space()
			}
			if !d.skip(depth + 1) {
				return false
			}
			d.space()
			switch d.next() {
			case ',':
				d.i++
				d.space()
			case end:
				d.i++
				return true
			default:
				return false
			}
		}
	default:
		_, ok := d.number()
		return ok
	}
}

// literal reads lit at d.i, if that is what is there.
func (d *fastDecoder) literal(lit string) bool {
	if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}
