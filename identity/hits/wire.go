package hits

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// Hit is one element of a POST /hits body: count hits (default 1) of key
// on api_id answered with code at time (default: when received), each
// taking latency_ms when given. Key is a raw key or its hash.
type Hit struct {
	Key       string     `json:"key"`
	APIID     string     `json:"api_id"`
	Code      int        `json:"code"`
	Time      *time.Time `json:"time,omitempty"`
	LatencyMS *float64   `json:"latency_ms,omitempty"`
	Count     *int64     `json:"count,omitempty"`
}

// Parse decodes and checks a POST /hits body received at now, filling the
// defaults. Any bad element fails the whole body, naming it.
func Parse(body []byte, now time.Time) ([]Hit, error) {
	return parse(body, now, decode)
}

// parse is Parse decoding with decode (a test decodes with encoding/json
// alone, to compare).
func parse(body []byte, now time.Time, decode func([]byte) ([]Hit, error)) ([]Hit, error) {
	if len(body) > MaxBody {
		return nil, invalid("a body is at most %d bytes", MaxBody)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '[' {
		return nil, invalid("the body must be a JSON array of hits")
	}
	in, err := decode(body)
	if err != nil {
		return nil, err
	}
	if len(in) > MaxPerRequest {
		return nil, invalid("at most %d hits per request", MaxPerRequest)
	}
	latest := now.Add(Skew)
	for i := range in {
		h := &in[i]
		switch {
		case h.Key == "" || len(h.Key) > MaxKey:
			return nil, invalid("hit %d: key must be a key or key hash", i)
		case len(h.APIID) > MaxAPIID:
			return nil, invalid("hit %d: api_id is longer than %d bytes", i, MaxAPIID)
		case !ValidCode(h.Code):
			return nil, invalid("hit %d: code must be an HTTP status (%d-%d)", i, MinCode, MaxCode)
		case h.Time != nil && (h.Time.Year() < 1970 || h.Time.After(latest)):
			return nil, invalid("hit %d: time must be after 1970 and not in the future", i)
		case h.LatencyMS != nil && !(*h.LatencyMS >= 0 && *h.LatencyMS <= float64(MaxLatency/time.Millisecond)):
			return nil, invalid("hit %d: latency_ms must be 0 to a day", i)
		case h.Count != nil && (*h.Count < 1 || *h.Count > MaxCount):
			return nil, invalid("hit %d: count must be 1 to %d", i, MaxCount)
		case h.Count != nil && h.LatencyMS != nil && *h.LatencyMS*1000*float64(*h.Count) > MaxSeriesLatencyUS:
			return nil, invalid("hit %d: count × latency_ms is too large to sum", i)
		}
		if h.Time == nil {
			h.Time = &now
		}
		if h.Count == nil {
			one := int64(1)
			h.Count = &one
		}
	}
	return in, nil
}

// Series returns the counters h adds to its series, under keyHash. h must
// have passed Parse.
func (h *Hit) Series(keyHash string) Series {
	ns := h.Time.UnixNano()
	s := Series{KeyHash: keyHash, APIID: h.APIID, Hour: HourOf(ns), Code: h.Code}
	latency := time.Duration(-1)
	if h.LatencyMS != nil {
		latency = time.Duration(*h.LatencyMS * float64(time.Millisecond))
	}
	s.add(*h.Count, h.Code, ns, latency)
	return s
}

// Encode writes series as POST /hits bodies, calling emit for each: at
// most MaxPerRequest elements and MaxBody bytes a body, in order, so that
// encoding the same series again yields the same bodies. A series of more
// than MaxCount hits takes several elements; its mean latency travels
// with each.
func Encode(series []Series, emit func(body []byte, hits int64) error) error {
	buf := make([]byte, 0, 64<<10)
	var elem []byte
	n, hits := 0, int64(0)
	flush := func() error {
		if n == 0 {
			return nil
		}
		buf = append(buf, ']')
		err := emit(buf, hits)
		buf, n, hits = buf[:0], 0, 0
		return err
	}
	for i := range series {
		s := &series[i]
		for left := s.Hits; left > 0; {
			count := min(left, MaxCount)
			left -= count
			elem = appendElement(elem[:0], s, count)
			if n == MaxPerRequest || len(buf)+len(elem)+2 > MaxBody {
				if err := flush(); err != nil {
					return err
				}
			}
			if n == 0 {
				buf = append(buf, '[')
			} else {
				buf = append(buf, ',')
			}
			buf = append(buf, elem...)
			n++
			hits += count
		}
	}
	return flush()
}

// appendElement appends s's wire element for count of its hits.
func appendElement(b []byte, s *Series, count int64) []byte {
	b = append(b, `{"key":`...)
	b = appendString(b, s.KeyHash)
	b = append(b, `,"api_id":`...)
	b = appendString(b, s.APIID)
	b = append(b, `,"code":`...)
	b = strconv.AppendInt(b, int64(s.Code), 10)
	b = append(b, `,"time":"`...)
	b = time.Unix(0, s.LastHit).UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","count":`...)
	b = strconv.AppendInt(b, count, 10)
	if s.LatencyCount == s.Hits && s.Hits > 0 {
		// Every hit was timed: the mean stands for each. (Series mixing
		// timed and untimed hits travel without a latency.)
		ms := float64(s.LatencyUS) / float64(s.LatencyCount) / 1000
		if !math.IsNaN(ms) {
			b = append(b, `,"latency_ms":`...)
			b = strconv.AppendFloat(b, ms, 'f', -1, 64)
		}
	}
	return append(b, '}')
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s) // rare: let encoding/json escape it
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
