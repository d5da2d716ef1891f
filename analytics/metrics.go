package analytics

import (
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keylens/keylens"
)

// Metrics are the committer's own health and, per key, the hits and
// errors stored, for Prometheus.
type Metrics struct {
	committedHits    prometheus.Counter
	refusedHits      prometheus.Counter
	refusedBatches   prometheus.Counter
	duplicateBatches prometheus.Counter
	invalidBatches   prometheus.Counter
	commitErrors     prometheus.Counter
	commitSeconds    prometheus.Histogram
	keys             *keyCounters

	mu        sync.Mutex
	committer *Committer
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
		committedHits: prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_analytics_committed_hits_total",
			Help: "Hits committed to the store."}),
		refusedHits: prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_analytics_refused_hits_total",
			Help: "Hits refused with 503 once parsed, because the pipeline was behind or shutting down; POST /hits refuses a batch before parsing it, counted in keylens_analytics_refused_batches_total only. Their writers retry them."}),
		refusedBatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_analytics_refused_batches_total",
			Help: "Batches refused with 503 because the pipeline was behind or shutting down, most before they were parsed (so their hits are not in keylens_analytics_refused_hits_total); their writers retry them."}),
		duplicateBatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_analytics_duplicate_batches_total",
			Help: "Batches acknowledged without counting because their id was applied before."}),
		invalidBatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_analytics_invalid_batches_total",
			Help: "Batches refused as invalid after the committer took them (by the store, or by the portal with --portal); hits refused where they enter (400 at POST /hits) are not counted here."}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_analytics_commit_errors_total",
			Help: "Commits that failed; they are retried."}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keylens_analytics_commit_duration_seconds",
			Help: "Time to commit one group of hit batches.", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 10)}),
		keys: newKeyCounters(maxKeys),
	}
	if reg != nil {
		reg.MustRegister(m.committedHits, m.refusedHits, m.refusedBatches, m.duplicateBatches, m.invalidBatches, m.commitErrors, m.commitSeconds, m.keys,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keylens_analytics_pending_hits",
				Help: "Hits received and not yet committed: waiting, or in the transaction under way."},
				m.fromCommitter(func(c *Committer) float64 { h, _ := c.pending(); return float64(h) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keylens_analytics_lag_seconds",
				Help: "Age of the oldest hit received and not yet committed; 0 when none waits."},
				m.fromCommitter(func(c *Committer) float64 { _, lag := c.pending(); return lag.Seconds() })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keylens_analytics_unfolded_series",
				Help: "Series committed to the store's hit log and not yet folded into its counters (queries count them meanwhile); POST /hits answers 503 while it is at the limit."},
				m.fromCommitter(func(c *Committer) float64 {
					if c.backlog == nil {
						return 0
					}
					return float64(c.backlog.HitBacklog())
				})),
		)
	}
	return m
}

func (m *Metrics) watch(c *Committer) {
	m.mu.Lock()
	m.committer = c
	m.mu.Unlock()
}

func (m *Metrics) fromCommitter(get func(*Committer) float64) func() float64 {
	return func() float64 {
		m.mu.Lock()
		c := m.committer
		m.mu.Unlock()
		if c == nil {
			return 0
		}
		return get(c)
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

func (k *keyCounters) add(deltas []keylens.HitDelta) {
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
