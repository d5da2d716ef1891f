package sidecar

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity/clock"
)

// Metrics are the sidecar's Prometheus collectors. Children used on the
// request path are resolved once, so recording allocates nothing.
type Metrics struct {
	requests        *requestMetrics
	cacheHits       *stripedCounter
	cacheMisses     prometheus.Counter
	cacheEvictions  prometheus.Counter
	truncated       prometheus.Counter
	storeLookups    *prometheus.CounterVec
	storeDuration   *prometheus.HistogramVec
	feedLag         prometheus.Gauge
	feedLastSeq     prometheus.Gauge
	feedErrors      prometheus.Counter
	feedLastContact prometheus.Gauge
	badRequests     prometheus.Counter
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered, e.g. in tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests:       newRequestMetrics(),
		cacheHits:      &stripedCounter{},
		cacheMisses:    prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_sidecar_cache_misses_total", Help: "Credentials that needed the store."}),
		cacheEvictions: prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_sidecar_cache_evictions_total", Help: "Cached identities dropped: expired, evicted for room, or invalidated."}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_sidecar_identity_headers_truncated_total",
			Help: "Identities resolved whose custom fields did not all fit in --max-identity-header-bytes: the rest were left out of the headers."}),
		storeLookups: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keylens_sidecar_store_lookups_total",
			Help: "Store reads by kind (key, basic, developer) and result (found, not_found, error)."}, []string{"kind", "result"}),
		storeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "keylens_sidecar_store_lookup_duration_seconds",
			Help: "Store read latency by kind.", Buckets: []float64{1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 0.1}}, []string{"kind"}),
		feedLag:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "keylens_sidecar_change_feed_lag_seconds", Help: "Age of the newest change applied, when it was applied."}),
		feedLastSeq:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "keylens_sidecar_change_feed_last_seq", Help: "Sequence number of the newest change applied."}),
		feedErrors:      prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_sidecar_change_feed_errors_total", Help: "Failed reads of the change feed."}),
		feedLastContact: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keylens_sidecar_change_feed_last_contact_timestamp_seconds", Help: "When the change feed last answered."}),
		badRequests:     prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_sidecar_unreadable_requests_total", Help: "Requests refused before routing: oversized headers or body, malformed HTTP."}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.cacheMisses, m.cacheEvictions, m.truncated, m.storeLookups,
			m.storeDuration, m.feedLag, m.feedLastSeq, m.feedErrors, m.feedLastContact, m.badRequests,
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keylens_sidecar_cache_hits_total",
				Help: "Credentials answered from the cache (found or unknown)."}, func() float64 { return float64(m.cacheHits.value()) }))
	}
	return m
}

func (m *Metrics) observeStore(kind string, start time.Time, err error) {
	m.storeDuration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	result := "found"
	switch keylens.ErrorCode(err) {
	case "":
	case keylens.ENOTFOUND:
		result = "not_found"
	default:
		result = "error"
	}
	m.storeLookups.WithLabelValues(kind, result).Inc()
}

// Counting on the request path: two cores adding to one counter fight over
// its cache line, which cost the sidecar 4-6 % of its throughput under
// load. Hot counters are therefore striped: each request adds to the stripe
// of its connection, and a scrape sums the stripes.
const stripes = 8 // a power of two

// stripedCounter is a counter spread over stripes.
type stripedCounter struct {
	s [stripes]struct {
		n atomic.Uint64
		_ [56]byte
	}
}

func (c *stripedCounter) add(hint uint64) { c.s[hint&(stripes-1)].n.Add(1) }

func (c *stripedCounter) value() uint64 {
	var n uint64
	for i := range c.s {
		n += c.s[i].n.Load()
	}
	return n
}

// durationBounds are the request histogram's upper bounds.
var durationBounds = [...]time.Duration{5 * time.Microsecond, 10 * time.Microsecond, 25 * time.Microsecond,
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Second}

// boundAtLen[n] is the index of the first bound of at least 2^(n-1)
// nanoseconds: where the bucket search starts for a duration of n
// significant bits. No two bounds have the same bit length (init checks),
// so one comparison then finds the bucket.
var boundAtLen = func() (t [65]uint8) {
	for n := range t {
		b := 0
		for b < len(durationBounds) && n > 0 && durationBounds[b] < 1<<(n-1) {
			b++
		}
		t[n] = uint8(b)
	}
	return t
}()

func init() {
	for i := 1; i < len(durationBounds); i++ {
		if bits.Len64(uint64(durationBounds[i])) == bits.Len64(uint64(durationBounds[i-1])) {
			panic("sidecar: two request histogram bounds share a bit length")
		}
	}
}

// bucketOf returns the histogram bucket of d: the first bound d does not
// exceed, or len(durationBounds) (+Inf).
func bucketOf(d time.Duration) int {
	d = max(d, 0)
	b := int(boundAtLen[bits.Len64(uint64(d))])
	if b < len(durationBounds) && d > durationBounds[b] {
		b++
	}
	return b
}

// outcome counts one endpoint's requests with one outcome and their
// durations, striped.
type outcome struct{ *outcomeStripes }

type outcomeStripes struct {
	endpoint, result string
	s                [stripes]struct {
		count   atomic.Uint64
		sumNS   atomic.Uint64
		buckets [13]atomic.Uint64 // per bound, then +Inf; not cumulative
		_       [16]byte
	}
}

// observe counts a request that started at start, on connection conn.
func (o outcome) observe(conn uint64, start clock.Stamp) {
	d := start.Elapsed()
	st := &o.s[conn&(stripes-1)]
	st.count.Add(1)
	st.sumNS.Add(uint64(max(d, 0)))
	st.buckets[bucketOf(d)].Add(1)
}

// requestMetrics exports every outcome as keylens_sidecar_requests_total
// and keylens_sidecar_request_duration_seconds.
type requestMetrics struct {
	mu       sync.Mutex
	outcomes []*outcomeStripes
	count    *prometheus.Desc
	duration *prometheus.Desc
}

func newRequestMetrics() *requestMetrics {
	labels := []string{"endpoint", "outcome"}
	return &requestMetrics{
		count: prometheus.NewDesc("keylens_sidecar_requests_total",
			"Sidecar requests by endpoint and outcome (ok, unknown, inactive, bad_request, unauthorized, error).", labels, nil),
		duration: prometheus.NewDesc("keylens_sidecar_request_duration_seconds",
			"Time to answer a sidecar request, by endpoint and outcome.", labels, nil),
	}
}

func (m *Metrics) outcome(endpoint, result string) outcome {
	r := m.requests
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.outcomes {
		if o.endpoint == endpoint && o.result == result {
			return outcome{o}
		}
	}
	o := &outcomeStripes{endpoint: endpoint, result: result}
	r.outcomes = append(r.outcomes, o)
	return outcome{o}
}

func (r *requestMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- r.count
	ch <- r.duration
}

func (r *requestMetrics) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	outcomes := append([]*outcomeStripes(nil), r.outcomes...)
	r.mu.Unlock()
	for _, o := range outcomes {
		var count, sumNS uint64
		var perBucket [13]uint64
		for i := range o.s {
			st := &o.s[i]
			count += st.count.Load()
			sumNS += st.sumNS.Load()
			for b := range perBucket {
				perBucket[b] += st.buckets[b].Load()
			}
		}
		cumulative := make(map[float64]uint64, len(durationBounds))
		var running uint64
		for b, bound := range durationBounds {
			running += perBucket[b]
			cumulative[bound.Seconds()] = running
		}
		ch <- prometheus.MustNewConstMetric(r.count, prometheus.CounterValue, float64(count), o.endpoint, o.result)
		ch <- prometheus.MustNewConstHistogram(r.duration, count, float64(sumNS)/1e9, cumulative, o.endpoint, o.result)
	}
}
