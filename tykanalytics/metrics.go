package tykanalytics

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the consumer's, for Prometheus.
type Metrics struct {
	records     *prometheus.CounterVec // by outcome
	noSession   *prometheus.CounterVec // by api_id, code
	chunks      *prometheus.CounterVec // by result
	errors      *prometheus.CounterVec // by op
	up          prometheus.Gauge
	recordAge   *prometheus.GaugeVec // by record: oldest, newest
	listLength  *prometheus.GaugeVec // by list
	deadLetters prometheus.Gauge

	mu   sync.Mutex
	apis map[string]bool // api_id labels in use, at most maxAPILabels
}

// maxAPILabels bounds the API ids with their own no-session series; the
// rest share api_id="other".
const maxAPILabels = 1000

// Outcomes of a record, the label of keylens_tyk_analytics_records_total.
const (
	OutcomeCounted   = "counted"
	OutcomeNoSession = "no_session"
)

// NewMetrics registers the consumer's metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keylens_tyk_analytics_records_total",
			Help: "Tyk analytics records consumed, by outcome: counted (for a key), no_session (per API only), malformed or uncountable (to the dead-letter list)."}, []string{"outcome"}),
		noSession: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keylens_tyk_analytics_no_session_hits_total",
			Help: "Requests with no session (keyless APIs, missing or unknown keys: APIKey 00000000 or empty), per API and status; never counted for a key."}, []string{"api_id", "code"}),
		chunks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keylens_tyk_analytics_chunks_total",
			Help: "Chunks of records finished: committed, duplicate (committed before, by a consumer that stopped before deleting it) or no_keys (nothing to commit)."}, []string{"result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keylens_tyk_analytics_errors_total",
			Help: "Failures, retried: redis (a command failed) or commit (the store could not take a chunk now)."}, []string{"op"}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keylens_tyk_analytics_redis_up",
			Help: "1 when the last Redis command succeeded."}),
		recordAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keylens_tyk_analytics_record_age_seconds",
			Help: "Age, when taken, of the oldest and newest records of the last chunk; 0 once the lists are empty. The gateway lets unread records expire after 60 s."}, []string{"record"}),
		listLength: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keylens_tyk_analytics_list_length",
			Help: "Records waiting in each gateway analytics list, sampled about once a second."}, []string{"list"}),
		deadLetters: prometheus.NewGauge(prometheus.GaugeOpts{Name: "keylens_tyk_analytics_dead_letter_length",
			Help: "Records in the dead-letter list, sampled about once a second."}),
		apis: map[string]bool{},
	}
	for _, o := range []string{OutcomeCounted, OutcomeNoSession, RejectMalformed, RejectUncountable} {
		m.records.WithLabelValues(o)
	}
	for _, r := range []string{"committed", "duplicate", "no_keys"} {
		m.chunks.WithLabelValues(r)
	}
	for _, op := range []string{"redis", "commit"} {
		m.errors.WithLabelValues(op)
	}
	if reg != nil {
		reg.MustRegister(m.records, m.noSession, m.chunks, m.errors, m.up, m.recordAge, m.listLength, m.deadLetters)
	}
	return m
}

// tally adds a finished chunk's records.
func (m *Metrics) tally(t *Tally) {
	m.records.WithLabelValues(OutcomeCounted).Add(float64(t.Counted))
	var noSession int64
	for k, n := range t.NoSession {
		noSession += n
		m.noSession.WithLabelValues(m.apiLabel(k.APIID), strconv.Itoa(k.Code)).Add(float64(n))
	}
	m.records.WithLabelValues(OutcomeNoSession).Add(float64(noSession))
	for _, r := range t.Rejected {
		m.records.WithLabelValues(r.Reason).Inc()
	}
}

func (m *Metrics) apiLabel(api string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.apis[api] {
		return api
	}
	if len(m.apis) >= maxAPILabels {
		return "other"
	}
	m.apis[api] = true
	return api
}
