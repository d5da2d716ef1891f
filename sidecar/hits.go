package sidecar

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity/clock"
	"github.com/keylens/keylens/identity/hits"
)

// hits stores a POST /hits batch: every element is checked first, and one
// bad element answers 400 with nothing stored. 200 means every hit is
// committed to the store; 503 with Retry-After that nothing was, and the
// writer should send the same batch again later.
func (s *Server) hits(ctx *fasthttp.RequestCtx) {
	start := clock.Now()
	ctx.Response.Header.Set("Cache-Control", "no-store")
	if s.Hits == nil {
		jsonError(ctx, fasthttp.StatusNotFound, "analytics are off")
		return
	}
	if !s.requireBearer(ctx, epHits, s.HitsAndChangesSecret, &s.hitsAndChangesSecretSum, "keylens hits", "a valid Bearer secret is required", start) {
		return
	}
	// A writer that may retry names its batch: the store applies an id
	// once, even across restarts.
	batch := ctx.Request.Header.Peek("X-Keylens-Batch")
	if len(batch) > hits.MaxBatchID {
		jsonError(ctx, fasthttp.StatusBadRequest, "X-Keylens-Batch is too long")
		s.outcomes[epHits][outBad].observe(ctx.ConnID(), start)
		return
	}
	body := ctx.PostBody()
	// Room before work: the committer's room is taken before the body is
	// parsed, so that a batch refused for want of it costs a byte count,
	// not a parse, hashes, lookups and a fold. Every element is an object,
	// so the body's '{' bound its series (and a body of more elements is
	// refused).
	w := s.Hits
	if r, ok := s.Hits.(keylens.HitReserver); ok {
		res, err := r.Reserve(min(bytes.Count(body, []byte{'{'}), hits.MaxPerRequest))
		if err != nil {
			s.hitsUnavailable(ctx, err, start)
			return
		}
		defer res.Release() // when the batch was not committed
		w = res
	}
	// Basic usernames are looked up in the store (or the portal): bounded
	// in number by parseHitsOf, and in time here.
	lookupCtx, cancel := context.WithTimeout(context.Background(), usernameLookupTimeout)
	b, err := parseHitsOf(lookupCtx, body, start.Time(), s.Resolver.store, s.parsing)
	cancel()
	var lookup lookupError
	if errors.As(err, &lookup) {
		s.Logger.Error("looking up a hit's Basic username failed", "err", lookup.error)
		ctx.Response.Header.Set("Retry-After", "1")
		jsonError(ctx, fasthttp.StatusServiceUnavailable, "hits could not be stored; retry later")
		s.outcomes[epHits][outError].observe(ctx.ConnID(), start)
		return
	}
	if err != nil {
		jsonError(ctx, fasthttp.StatusBadRequest, err.Error())
		s.outcomes[epHits][outBad].observe(ctx.ConnID(), start)
		return
	}
	b.ID = string(batch)
	if len(b.Series) == 0 { // an empty array: nothing to store
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"recorded":0,"dropped":0}`)
		s.outcomes[epHits][outOK].observe(ctx.ConnID(), start)
		return
	}
	// Not the request's context: fasthttp ends it when shutdown begins,
	// and a batch taken is committed (or refused) whatever happens.
	applied, err := w.AddHits(context.Background(), []keylens.HitBatch{b})
	switch keylens.ErrorCode(err) {
	case "":
	case keylens.EINVALID:
		jsonError(ctx, fasthttp.StatusBadRequest, keylens.ErrorMessage(err))
		s.outcomes[epHits][outBad].observe(ctx.ConnID(), start)
		return
	case keylens.EUNAVAILABLE:
		s.hitsUnavailable(ctx, err, start)
		return
	default:
		s.Logger.Error("storing hits failed", "err", err)
		ctx.Response.Header.Set("Retry-After", "1")
		jsonError(ctx, fasthttp.StatusServiceUnavailable, "hits could not be stored; retry later")
		s.outcomes[epHits][outError].observe(ctx.ConnID(), start)
		return
	}
	ctx.SetContentType("application/json")
	if applied[0] {
		fmt.Fprintf(ctx, `{"recorded":%d,"dropped":0}`, b.Hits())
	} else {
		ctx.SetBodyString(`{"recorded":0,"dropped":0,"duplicate":true}`)
	}
	s.outcomes[epHits][outOK].observe(ctx.ConnID(), start)
}

// hitsUnavailable answers 503 with Retry-After: nothing was stored, and
// the writer sends the same batch again later.
func (s *Server) hitsUnavailable(ctx *fasthttp.RequestCtx, err error, start clock.Stamp) {
	ctx.Response.Header.Set("Retry-After", "1")
	jsonError(ctx, fasthttp.StatusServiceUnavailable, keylens.ErrorMessage(err))
	s.outcomes[epHits][outError].observe(ctx.ConnID(), start)
}

// parseHits is parseHitsOf without Basic usernames: every key is a hash
// or a raw key.
func parseHits(body []byte, now time.Time) (keylens.HitBatch, error) {
	return parseHitsOf(context.Background(), body, now, nil, nil)
}

// lookupError: a key could not be looked up (the store failed); the hits
// may be fine, and the writer should send them again later.
type lookupError struct{ error }

// A POST /hits body's Basic usernames are each a store lookup (a portal
// round trip behind --portal): at most maxUsernameLookups distinct ones a
// body, all within usernameLookupTimeout. Gateways and the plugin send key
// hashes, which need none.
const (
	maxUsernameLookups    = 100
	usernameLookupTimeout = 5 * time.Second
)

// parseHitsOf decodes and checks a POST /hits body into one batch of series:
// keys replaced by the hashes they name (keylens.HitKeyHash: a Basic
// username looked up in basic, once per distinct key), hits of one series
// summed. Hits enter here: a batch it returns with series has passed
// keylens.ValidateHits, and is not checked again on its way to the store.
// The decoding takes one of slots (when given), a CPU's worth of work
// each, for as long as it runs, not while it looks usernames up.
func parseHitsOf(ctx context.Context, body []byte, now time.Time, basic keylens.CredentialService, slots chan struct{}) (keylens.HitBatch, error) {
	if slots != nil {
		slots <- struct{}{}
	}
	in, err := hits.Parse(body, now)
	if slots != nil {
		<-slots
	}
	if err != nil {
		return keylens.HitBatch{}, err
	}
	series := make([]keylens.HitDelta, len(in))
	var hashOf map[string]string
	lookups := 0
	for i := range in {
		if keylens.IsKeyHash(in[i].Key) { // what the plugin sends: no map, no lookup
			series[i] = in[i].Series(in[i].Key)
			continue
		}
		hash, ok := hashOf[in[i].Key]
		if !ok {
			if basic != nil && keylens.KeyOrg(in[i].Key) == "" {
				if lookups++; lookups > maxUsernameLookups {
					return keylens.HitBatch{}, fmt.Errorf("a body may name at most %d distinct keys that are neither key hashes "+
						"nor gateway keys (each is looked up as a Basic username): send key hashes", maxUsernameLookups)
				}
			}
			if hash, err = keylens.HitKeyHash(ctx, in[i].Key, basic); err != nil {
				return keylens.HitBatch{}, lookupError{err}
			}
			if hashOf == nil {
				hashOf = make(map[string]string)
			}
			hashOf[in[i].Key] = hash
		}
		series[i] = in[i].Series(hash)
	}
	b := keylens.HitBatch{Series: hits.Fold(series[:0], series, 1)}
	if len(b.Series) == 0 { // an empty array, answered without the store
		return b, nil
	}
	// Parse checks each element; the series check its sums too.
	if err := keylens.ValidateHits([]keylens.HitBatch{b}); err != nil {
		return keylens.HitBatch{}, errors.New(keylens.ErrorMessage(err))
	}
	return b, nil
}
