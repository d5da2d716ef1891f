package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/keylens/keylens/identity/hits"
)

// shipper counts hits in memory (hits.Counter) and ships them to the
// sidecar's POST /hits every flush interval (hits.Batcher): recording
// never blocks on the network; a body that failed is sent again under the
// same X-Keylens-Batch id, which the store applies once, even across
// restarts of the sidecar. The sidecar answers 200 only once a body is
// committed. The series held are bounded (max_series); hits of new series
// beyond it are dropped and counted.
//
// A Go plugin is never unloaded and the gateway offers it no shutdown
// hook, so what was counted and not yet acknowledged when the gateway
// process ends is lost: at most one flush interval of hits, or, while the
// sidecar is unreachable, everything counted since it was last reached.
type shipper struct {
	s       settings
	client  *http.Client
	counter *hits.Counter
	batcher *hits.Batcher
	once    sync.Once

	mu       sync.Mutex // the failure log's state
	failing  bool
	lastLog  time.Time
	failures int
}

func newShipper(s settings) *shipper {
	sh := &shipper{s: s, client: &http.Client{Timeout: 30 * time.Second}, counter: hits.NewCounter(s.MaxSeries)}
	sh.batcher = hits.NewBatcher(sh.counter, sh.post)
	return sh
}

// record counts one hit; latency < 0 means none was measured. The
// shipper's goroutine starts with the first hit.
func (sh *shipper) record(keyHash, apiID string, at int64, code int, latency time.Duration) {
	sh.once.Do(func() { go sh.batcher.Run(context.Background(), sh.s.FlushInterval, sh.logFailure) })
	sh.counter.Record(keyHash, apiID, at, code, 1, latency)
}

// logFailure logs when shipping starts failing and when it works again,
// and while it fails at most once a minute, with the failures since.
func (sh *shipper) logFailure(err error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := time.Now()
	switch {
	case err == nil:
		logger.Printf("sending hits to the keylens sidecar works again after %d failures", sh.failures)
		sh.failing, sh.failures = false, 0
	case !sh.failing:
		logger.Printf("sending hits to the keylens sidecar failed, keeping them and retrying: %v", err)
		sh.failing, sh.failures, sh.lastLog = true, 1, now
	default:
		sh.failures++
		if now.Sub(sh.lastLog) >= time.Minute {
			logger.Printf("sending hits to the keylens sidecar still fails (%d failures, %d hits waiting): %v",
				sh.failures, sh.batcher.Pending(), err)
			sh.lastLog = now
		}
	}
}

// post sends one body of a batch, telling the batcher what the answer means.
func (sh *shipper) post(ctx context.Context, id string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sh.s.SidecarURL+"/hits", bytes.NewReader(body))
	if err != nil {
		return hits.Refused(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Keylens-Batch", id)
	if sh.s.HitsAndChangesSecret != "" {
		req.Header.Set("Authorization", "Bearer "+sh.s.HitsAndChangesSecret)
	}
	res, err := sh.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	status := res.StatusCode
	switch {
	case status == http.StatusOK:
		return nil
	case status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests:
		wait, _ := strconv.Atoi(res.Header.Get("Retry-After"))
		return hits.RetryAfter(time.Duration(wait)*time.Second, fmt.Errorf("sidecar busy (%d): %s", status, msg))
	case status >= 400 && status < 500:
		// Refused for good (a wrong secret, a body the sidecar will
		// never take): sending it again would block every later batch.
		err := fmt.Errorf("the keylens sidecar refused a batch of hits (%d): %s", status, msg)
		logger.Print(err)
		return hits.Refused(err)
	default:
		return errors.New("sidecar answered " + strconv.Itoa(status) + ": " + string(msg))
	}
}
