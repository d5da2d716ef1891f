package sidecar

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keylens/keylens/portalstore"
)

// Metrics are the sidecar's Prometheus collectors. Children used on the
// request path are resolved once, so recording allocates nothing.
type Metrics struct {
	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	cacheHits       prometheus.Counter
	cacheMisses     prometheus.Counter
	cacheEvictions  prometheus.Counter
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
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keylens_sidecar_requests_total",
			Help: "Sidecar requests by endpoint and outcome (ok, unknown, inactive, bad_request, unauthorized, error)."}, []string{"endpoint", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "keylens_sidecar_request_duration_seconds",
			Help:    "Time to answer a sidecar request, by endpoint and outcome.",
			Buckets: []float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 0.1, 1}}, []string{"endpoint", "outcome"}),
		cacheHits:      prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_sidecar_cache_hits_total", Help: "Credentials answered from the cache (found or unknown)."}),
		cacheMisses:    prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_sidecar_cache_misses_total", Help: "Credentials that needed the store."}),
		cacheEvictions: prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_sidecar_cache_evictions_total", Help: "Cached identities dropped: expired, evicted for room, or invalidated."}),
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
		reg.MustRegister(m.requests, m.duration, m.cacheHits, m.cacheMisses, m.cacheEvictions, m.storeLookups,
			m.storeDuration, m.feedLag, m.feedLastSeq, m.feedErrors, m.feedLastContact, m.badRequests)
	}
	return m
}

func (m *Metrics) observeStore(kind string, start time.Time, err error) {
	m.storeDuration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	result := "found"
	switch portalstore.ErrorCode(err) {
	case "":
	case portalstore.ENOTFOUND:
		result = "not_found"
	default:
		result = "error"
	}
	m.storeLookups.WithLabelValues(kind, result).Inc()
}

// outcome is a pre-resolved (counter, histogram) pair for one endpoint and
// outcome.
type outcome struct {
	count prometheus.Counter
	dur   prometheus.Observer
}

func (m *Metrics) outcome(endpoint, result string) outcome {
	return outcome{m.requests.WithLabelValues(endpoint, result), m.duration.WithLabelValues(endpoint, result)}
}

func (o outcome) observe(start time.Time) {
	o.count.Inc()
	o.dur.Observe(time.Since(start).Seconds())
}
