package sidecar

import (
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
	b, err := parseHits(ctx.PostBody(), start.Time())
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
	applied, err := s.Hits.AddHits(context.Background(), []keylens.HitBatch{b})
	switch keylens.ErrorCode(err) {
	case "":
	case keylens.EINVALID:
		jsonError(ctx, fasthttp.StatusBadRequest, keylens.ErrorMessage(err))
		s.outcomes[epHits][outBad].observe(ctx.ConnID(), start)
		return
	case keylens.EUNAVAILABLE:
		ctx.Response.Header.Set("Retry-After", "1")
		jsonError(ctx, fasthttp.StatusServiceUnavailable, keylens.ErrorMessage(err))
		s.outcomes[epHits][outError].observe(ctx.ConnID(), start)
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

// parseHits decodes and checks a POST /hits body into one batch of series:
// raw keys replaced by their hashes, hits of one series summed. Hits enter
// here: a batch it returns with series has passed keylens.ValidateHits, and
// is not checked again on its way to the store.
func parseHits(body []byte, now time.Time) (keylens.HitBatch, error) {
	in, err := hits.Parse(body, now)
	if err != nil {
		return keylens.HitBatch{}, err
	}
	series := make([]keylens.HitDelta, len(in))
	for i := range in {
		series[i] = in[i].Series(keylens.KeyHashOf(in[i].Key))
	}
	b := keylens.HitBatch{Series: hits.Fold(nil, series, 1)}
	if len(b.Series) == 0 { // an empty array, answered without the store
		return b, nil
	}
	// Parse checks each element; the series check its sums too.
	if err := keylens.ValidateHits([]keylens.HitBatch{b}); err != nil {
		return keylens.HitBatch{}, errors.New(keylens.ErrorMessage(err))
	}
	return b, nil
}
