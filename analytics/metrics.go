package analytics

import (
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keylens/keylens/portalstore"
)

// Metrics are the recorder's and flusher's own health and, per key, the
// hits and errors stored, for Prometheus.
type Metrics struct {
	flushedHits  prometheus.Counter
	droppedHits  prometheus.Counter
	flushErrors  prometheus.Counter
	flushSeconds prometheus.Histogram
	keys         *keyCounters

	mu       sync.Mutex
	recorder *Recorder
}

// DefaultMaxKeys bounds the keys with their own Prometheus series.
const DefaultMaxKeys = 10000

// NewMetrics registers the analytics metrics with reg (nil: unregistered).
// At most maxKeys keys (0: DefaultMaxKeys) have per-key series; beyond
// that the least recently hit key's series go.
func NewMetrics(reg prometheus.Registerer, maxKeys int) *Metrics {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	m := &Metrics{
		flushedHits: prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_analytics_flushed_hits_total",
			Help: "Hits stored by the flusher."}),
		droppedHits: prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_analytics_refused_hits_total",
			Help: "Hits in batches the store refused as invalid."}),
		flushErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_analytics_flush_errors_total",
			Help: "Flushes that failed; their batch is sent again."}),
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keylens_analytics_flush_duration_seconds",
			Help: "Time to store one batch of hit counters.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}),
		keys: newKeyCounters(maxKeys),
	}
	if reg != nil {
		reg.MustRegister(m.flushedHits, m.droppedHits, m.flushErrors, m.flushSeconds, m.keys,
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keylens_analytics_recorded_hits_total",
				Help: "Hits counted by the recorder."}, m.fromRecorder(func(r *Recorder) float64 { return float64(r.Recorded()) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keylens_analytics_dropped_hits_total",
				Help: "Hits the recorder refused: a new series while it held --analytics-max-series."},
				m.fromRecorder(func(r *Recorder) float64 { return float64(r.Dropped()) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keylens_analytics_pending_hits",
				Help: "Hits recorded and not yet flushed."}, m.fromRecorder(func(r *Recorder) float64 { return float64(r.unflushed()) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keylens_analytics_series",
				Help: "Series the recorder holds."}, m.fromRecorder(func(r *Recorder) float64 { return float64(r.Series()) })),
		)
	}
	return m
}

func (m *Metrics) watch(r *Recorder) {
	m.mu.Lock()
	m.recorder = r
	m.mu.Unlock()
}

func (m *Metrics) fromRecorder(get func(*Recorder) float64) func() float64 {
	return func() float64 {
		m.mu.Lock()
		r := m.recorder
		m.mu.Unlock()
		if r == nil {
			return 0
		}
		return get(r)
	}
}

// keyCounters exports per-key hits and errors as counters, for the keys
// most recently hit, at most max of them. A key whose series were evicted
// starts again from zero if it returns, which Prometheus reads as a counter
// reset.
type keyCounters struct {
	mu    sync.Mutex
	cache *lru.Cache[string, *keyCount]
	hits  *prometheus.Desc
	errs  *prometheus.Desc
}

type keyCount struct{ hits, errors int64 }

func newKeyCounters(max int) *keyCounters {
	c, _ := lru.New[string, *keyCount](max) // max > 0
	return &keyCounters{cache: c,
		hits: prometheus.NewDesc("keylens_key_hits_total", "Hits stored per key (key_id is the key hash), for the most recently used keys.", []string{"key_id"}, nil),
		errs: prometheus.NewDesc("keylens_key_errors_total", "Hits per key answered with a status >= 400.", []string{"key_id"}, nil),
	}
}

func (k *keyCounters) add(deltas []portalstore.HitDelta) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := range deltas {
		d := &deltas[i]
		c, ok := k.cache.Get(d.KeyHash)
		if !ok {
			c = &keyCount{}
			k.cache.Add(d.KeyHash, c)
		}
		c.hits += d.Hits
		c.errors += d.Errors
	}
}

func (k *keyCounters) Describe(ch chan<- *prometheus.Desc) {
	ch <- k.hits
	ch <- k.errs
}

func (k *keyCounters) Collect(ch chan<- prometheus.Metric) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, key := range k.cache.Keys() {
		c, _ := k.cache.Peek(key)
		ch <- prometheus.MustNewConstMetric(k.hits, prometheus.CounterValue, float64(c.hits), key)
		ch <- prometheus.MustNewConstMetric(k.errs, prometheus.CounterValue, float64(c.errors), key)
	}
}
