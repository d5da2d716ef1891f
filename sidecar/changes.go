package sidecar

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keylens/keylens/identity"
	"github.com/keylens/keylens/identity/clock"
)

// changes serves GET /changes?after=N&wait=D&limit=L: the change feed to
// followers of the sidecar (the Tyk plugin), so that their caches drop a
// revoked key or a deactivated developer as the sidecar's does. It serves
// a change only once this sidecar's own cache has applied it: a follower
// that drops an entry and asks again gets the new answer, never the old
// one from a cache that has not caught up. Without after it answers at
// once with where to start: {"changes":[],"last":<applied position>}.
func (s *Server) changes(ctx *fasthttp.RequestCtx) {
	start := clock.Now()
	ctx.Response.Header.Set("Cache-Control", "no-store")
	if !s.requireBearer(ctx, epChanges, s.HitsAndChangesSecret, &s.hitsAndChangesSecretSum, "keylens changes", "a valid Bearer secret is required", start) {
		return
	}
	if s.Feed == nil {
		jsonError(ctx, fasthttp.StatusNotFound, "the change feed is off")
		s.outcomes[epChanges][outBad].observe(ctx.ConnID(), start)
		return
	}
	args := ctx.QueryArgs()
	after, limit, wait := int64(-1), 1000, time.Duration(0)
	var err error
	if v := args.Peek("after"); v != nil {
		if after, err = strconv.ParseInt(string(v), 10, 64); err != nil || after < 0 {
			s.badChanges(ctx, start, "after must be a sequence number")
			return
		}
	}
	if v := args.Peek("limit"); v != nil {
		if limit, err = strconv.Atoi(string(v)); err != nil || limit < 1 || limit > 10000 {
			s.badChanges(ctx, start, "limit must be 1 to 10000")
			return
		}
	}
	if v := args.Peek("wait"); v != nil {
		if wait, err = time.ParseDuration(string(v)); err != nil || wait < 0 {
			s.badChanges(ctx, start, "wait must be a duration such as 25s")
			return
		}
		wait = min(wait, identity.MaxChangesWait)
	}
	applied := s.Resolver.Applied()
	if applied < 0 {
		jsonError(ctx, fasthttp.StatusServiceUnavailable, "not following the change feed yet")
		s.outcomes[epChanges][outError].observe(ctx.ConnID(), start)
		return
	}
	out := identity.Changes{Changes: []identity.Change{}, Last: applied}
	if after > applied {
		// Ahead of this sidecar: it is catching up, or the feed was
		// recreated (a new store), where the position means nothing.
		sctx, cancel := storeContext()
		last, err := s.Feed.LastChange(sctx)
		cancel()
		if err == nil && last < after {
			out.Reset = true
			after = -1
		}
	}
	if after >= 0 {
		// The wait ends early when the server shuts down (RequestCtx.Done).
		applied = s.Resolver.WaitApplied(ctx, after, wait)
		out.Last = after
		if applied > after {
			sctx, cancel := storeContext()
			changes, gap, err := s.Feed.WaitForChanges(sctx, after, limit, 0)
			cancel()
			if err != nil {
				s.Logger.Error("reading the change feed failed", "err", err)
				jsonError(ctx, fasthttp.StatusServiceUnavailable, "change feed unavailable")
				s.outcomes[epChanges][outError].observe(ctx.ConnID(), start)
				return
			}
			for _, c := range changes {
				if c.Seq > applied {
					break // not in this sidecar's cache yet
				}
				out.Changes = append(out.Changes, c)
				out.Last = c.Seq
			}
			if gap {
				out.Reset = true
				if len(out.Changes) == 0 {
					out.Last = applied
				}
			}
		}
	}
	body, _ := json.Marshal(out)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
	s.outcomes[epChanges][outOK].observe(ctx.ConnID(), start)
}

func (s *Server) badChanges(ctx *fasthttp.RequestCtx, start clock.Stamp, msg string) {
	jsonError(ctx, fasthttp.StatusBadRequest, msg)
	s.outcomes[epChanges][outBad].observe(ctx.ConnID(), start)
}
