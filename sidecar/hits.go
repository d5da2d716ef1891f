package sidecar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keylens/keylens/identity/cache"
	"github.com/keylens/keylens/portalstore"
)

// hitIn is one element of a POST /hits body.
type hitIn struct {
	Key   string     `json:"key"` // a raw key or a key hash
	APIID string     `json:"api_id"`
	Code  int        `json:"code"`
	Time  *time.Time `json:"time"`       // RFC 3339; default now
	MS    *float64   `json:"latency_ms"` // optional
	Count *int64     `json:"count"`      // hits this element stands for; default 1
}

// maxHitsPerRequest bounds one POST /hits.
const maxHitsPerRequest = 10000

// maxCount bounds one element's count; sums of many stay far from
// overflowing the counters.
const maxCount = 1_000_000_000

// hitsSkew is how far in the future a hit's time may be: clocks differ a
// little, not by days.
const hitsSkew = time.Hour

// hits records a batch of hits: every element is checked first, and one bad
// element answers 400 with nothing recorded. 200 means every hit is
// counted and will be stored by the next flush (within a second) or on
// shutdown.
func (s *Server) hits(ctx *fasthttp.RequestCtx) {
	start := now()
	ctx.Response.Header.Set("Cache-Control", "no-store")
	if s.Recorder == nil {
		jsonError(ctx, fasthttp.StatusNotFound, "analytics are off")
		return
	}
	if !s.requireBearer(ctx, epHits, s.HitsSecret, &s.hitsSecret, "keylens hits", "a valid Bearer secret is required", start) {
		return
	}
	// A writer that retries a batch whose answer it lost names it; a
	// batch seen in the last minutes is acknowledged, not counted again.
	batch := ctx.Request.Header.Peek("X-Keylens-Batch")
	if len(batch) > 256 {
		jsonError(ctx, fasthttp.StatusBadRequest, "X-Keylens-Batch is too long")
		s.outcomes[epHits][outBad].observe(ctx.ConnID(), start)
		return
	}
	var batchKey cache.Key
	if len(batch) > 0 {
		batchKey = cache.KeyOf(batch)
		if _, seen := s.batches.Get(batchKey, start.wall, ctx.ConnID()); seen {
			ctx.SetContentType("application/json")
			ctx.SetBodyString(`{"recorded":0,"dropped":0,"duplicate":true}`)
			s.outcomes[epHits][outOK].observe(ctx.ConnID(), start)
			return
		}
	}
	in, err := parseHits(ctx.PostBody(), start.Time())
	if err != nil {
		jsonError(ctx, fasthttp.StatusBadRequest, err.Error())
		s.outcomes[epHits][outBad].observe(ctx.ConnID(), start)
		return
	}
	var n, dropped int64
	for i := range in {
		h := &in[i]
		latency := time.Duration(-1)
		if h.MS != nil {
			latency = time.Duration(*h.MS * float64(time.Millisecond))
		}
		if s.Recorder.RecordN(h.Key, h.APIID, *h.Time, h.Code, *h.Count, latency) {
			n += *h.Count
		} else {
			dropped += *h.Count
		}
	}
	if len(batch) > 0 {
		s.batches.Add(batchKey, struct{}{}, start.wall)
	}
	ctx.SetContentType("application/json")
	fmt.Fprintf(ctx, `{"recorded":%d,"dropped":%d}`, n, dropped)
	s.outcomes[epHits][outOK].observe(ctx.ConnID(), start)
}

// parseHits decodes and checks a POST /hits body, replacing raw keys by
// their hashes and filling defaults. Any bad element fails the whole body.
func parseHits(body []byte, now time.Time) ([]hitIn, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '[' {
		return nil, fmt.Errorf("the body must be a JSON array of hits")
	}
	var in []hitIn
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("malformed hits: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("malformed hits: data after the array")
	}
	if len(in) > maxHitsPerRequest {
		return nil, fmt.Errorf("at most %d hits per request", maxHitsPerRequest)
	}
	for i := range in {
		h := &in[i]
		switch {
		case h.Key == "" || len(h.Key) > maxCredential:
			return nil, fmt.Errorf("hit %d: key must be a key or key hash", i)
		case len(h.APIID) > 256:
			return nil, fmt.Errorf("hit %d: api_id too long", i)
		case h.Code < 100 || h.Code > 599:
			return nil, fmt.Errorf("hit %d: code must be an HTTP status (100-599)", i)
		case h.Time != nil && (h.Time.Year() < 1970 || h.Time.After(now.Add(hitsSkew))):
			return nil, fmt.Errorf("hit %d: time must be after 1970 and not in the future", i)
		case h.MS != nil && (*h.MS < 0 || math.IsNaN(*h.MS) || *h.MS > 24*3600*1000):
			return nil, fmt.Errorf("hit %d: latency_ms must be 0 to a day", i)
		case h.Count != nil && (*h.Count < 1 || *h.Count > maxCount):
			return nil, fmt.Errorf("hit %d: count must be 1 to %d", i, maxCount)
		}
		if h.Time == nil {
			h.Time = &now
		}
		if h.Count == nil {
			one := int64(1)
			h.Count = &one
		}
		if !portalstore.IsKeyHash(h.Key) {
			h.Key = portalstore.HashKey(h.Key)
		}
	}
	return in, nil
}
