package tykgateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity/backoff"
)

// SettingApplied is the setting holding the sequence number of the last
// change the outbox applied to the gateway: where it resumes after a
// restart.
const SettingApplied = "tyk_gateway_applied_seq"

// Store is what the outbox reads: the change feed, keys and developers as
// they are now, and its own position.
type Store interface {
	WaitForChanges(ctx context.Context, after int64, limit int, wait time.Duration) ([]keylens.Change, bool, error)
	LastChange(ctx context.Context) (int64, error)
	ResolveKey(ctx context.Context, hash string) (*keylens.Credential, error)
	FindDeveloperKeys(ctx context.Context, devID string) ([]*keylens.Key, error)
	FindDeveloperByID(ctx context.Context, id string) (*keylens.Developer, error)
	InitSetting(ctx context.Context, name, value string) (string, error)
	PutSetting(ctx context.Context, name, value string) error
	// SkipChange keeps a change the outbox gave up on, for tyk sync.
	SkipChange(ctx context.Context, c keylens.Change, reason string) error
}

// Outbox applies the change feed to the gateway: in order, one change at
// a time, and its position stored after each, so that a restart resumes
// where it stopped. While the gateway does not answer, a change waits and
// the gateway is probed every probeInterval: the change is applied as soon
// as it answers. A change the gateway answers with a failure is retried
// with backoff. Applying a change makes the gateway agree with the store
// as it is now (a revoked key is deleted, a changed key or developer
// rewritten), so applying one twice changes nothing.
type Outbox struct {
	Store    Store
	Client   *Client
	Inactive *InactivePolicy
	Logger   *slog.Logger
	Metrics  *Metrics

	pos         atomic.Int64
	head        atomic.Int64
	oldestNano  atomic.Int64 // time of the oldest change not yet applied; 0 when none
	refusedOnce atomic.Bool  // the inactive policy's refusal was logged
}

// Backoff bounds of a change the gateway answered with a failure, or the
// store failed to read.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// probeInterval is how often a gateway that does not answer is probed
// (Client.Hello).
var probeInterval = 250 * time.Millisecond

// Start reads the stored position (the newest change, the first time:
// changes from before provisioning was configured are not replayed).
func (o *Outbox) Start(ctx context.Context) error {
	last, err := o.Store.LastChange(ctx)
	if err != nil {
		return err
	}
	v, err := o.Store.InitSetting(ctx, SettingApplied, strconv.FormatInt(last, 10))
	if err != nil {
		return err
	}
	pos, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("setting %s: %q is not a sequence number", SettingApplied, v)
	}
	o.pos.Store(pos)
	o.head.Store(max(last, pos))
	if o.Metrics != nil {
		o.Metrics.watch(o)
	}
	return nil
}

// Position is the sequence number of the last change applied.
func (o *Outbox) Position() int64 { return o.pos.Load() }

// Run applies changes until ctx ends, from the stored position: run it
// in one process of a store at a time (sqlstore.DB.Exclusive), which may
// have waited while another moved the position on.
func (o *Outbox) Run(ctx context.Context) {
	if v, err := o.Store.InitSetting(ctx, SettingApplied, strconv.FormatInt(o.pos.Load(), 10)); err == nil {
		if pos, err := strconv.ParseInt(v, 10, 64); err == nil {
			o.pos.Store(pos)
		}
	}
	retry := backoff.Backoff{Min: minBackoff, Max: maxBackoff}
	for ctx.Err() == nil {
		changes, gap, err := o.Store.WaitForChanges(ctx, o.pos.Load(), 100, 30*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				o.logger().Warn("reading the change feed for the Tyk gateway failed; retrying", "err", err)
				_ = retry.Wait(ctx)
			}
			continue
		}
		retry.Reset()
		if gap {
			o.logger().Error("changes were pruned before they reached the Tyk gateway; run keylens tyk sync --fix",
				"after", o.pos.Load())
		}
		if head, err := o.Store.LastChange(ctx); err == nil {
			o.head.Store(head)
		}
		for _, c := range changes {
			o.oldestNano.Store(c.Time.UnixNano())
			if !o.applyWithRetry(ctx, c) {
				return // ctx ended
			}
			o.oldestNano.Store(0)
		}
	}
}

// applyWithRetry applies c until it succeeds or is skipped, then stores
// the position; false when ctx ended first.
func (o *Outbox) applyWithRetry(ctx context.Context, c keylens.Change) bool {
	retry := backoff.Backoff{Min: minBackoff, Max: maxBackoff}
	for attempt := 1; ; attempt++ {
		err := o.ensureInactive(ctx)
		if err == nil {
			err = o.Apply(ctx, c)
		}
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			o.Metrics.applied(time.Since(c.Time))
			break
		}
		o.Metrics.failed()
		if reason := givesUp(err, attempt); reason != "" {
			o.skip(ctx, c, reason, err)
			break
		}
		level := slog.LevelWarn
		if attempt > 1 {
			level = slog.LevelDebug
		}
		o.logger().Log(ctx, level, "a change did not reach the Tyk gateway; retrying", "seq", c.Seq, "kind", c.Kind, "attempt", attempt, "err", err)
		if StatusOf(err) == 0 && IsGateway(err) {
			// No answer: wait out the backoff while probing the gateway,
			// and retry as soon as it answers after being down (the
			// backoff alone would make a revoke wait up to its cap after
			// the gateway is back).
			back, ok := o.waitForGateway(ctx, retry.Next())
			if !ok {
				return false
			}
			if back {
				retry.Reset()
			}
			continue
		}
		if retry.Wait(ctx) != nil {
			return false
		}
	}
	for {
		err := o.Store.PutSetting(ctx, SettingApplied, strconv.FormatInt(c.Seq, 10))
		if err == nil {
			o.pos.Store(c.Seq)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		o.logger().Warn("storing the Tyk outbox position failed; retrying", "seq", c.Seq, "err", err)
		_ = backoff.Sleep(ctx, time.Second)
	}
}

// ensureInactive makes sure the inactive policy exists before a change
// may need it. The gateway's failures are the change's (retried); a
// refusal that no retry mends (the gateway refuses to write policies) is
// logged once, and changes go on: a deactivation then fails at the
// gateway and is skipped.
func (o *Outbox) ensureInactive(ctx context.Context) error {
	err := o.Inactive.Ensure(ctx, o.Client)
	if err == nil || IsGateway(err) {
		return err
	}
	if o.refusedOnce.CompareAndSwap(false, true) {
		o.logger().Error("deactivation cannot stop keys in the Tyk gateway", "err", err)
	}
	return nil
}

// waitForGateway waits up to d, probing the gateway every probeInterval,
// and ends early when a probe is answered after one was not: back reports
// that. A gateway that answers its probes but not the call itself is
// waited d for, not hammered. ok is false when ctx ended first.
func (o *Outbox) waitForGateway(ctx context.Context, d time.Duration) (back, ok bool) {
	deadline := time.Now().Add(d)
	down := false
	for {
		if err := o.Client.Hello(ctx); err != nil {
			down = true
		} else if down {
			return true, true
		}
		if left := time.Until(deadline); left <= 0 && !down {
			return false, ctx.Err() == nil
		}
		if backoff.Sleep(ctx, probeInterval) != nil {
			return false, false
		}
	}
}

// skip gives up change c: counted, logged once with what to do, and kept
// in the store for keylens tyk sync to report and apply.
func (o *Outbox) skip(ctx context.Context, c keylens.Change, reason string, err error) {
	what := "the Tyk gateway refused a change; skipping it (keylens tyk sync reports it, and --fix applies it once the cause is mended)"
	if reason == skippedStore {
		what = "the store failed to read what a change names; skipping it so that later changes (revocations among them) go on: " +
			"mend the cause (the log above says it), then run keylens tyk sync --fix to apply it"
	}
	o.logger().Error(what, "seq", c.Seq, "kind", c.Kind, "key_hash", c.KeyHash, "developer_id", c.DeveloperID, "client_id", c.ClientID, "err", err)
	o.Metrics.skipped(reason)
	if serr := o.Store.SkipChange(ctx, c, reason+": "+err.Error()); serr != nil {
		o.logger().Error("could not keep the skipped change for keylens tyk sync", "seq", c.Seq, "err", serr)
	}
}

// Why a change is skipped (the reason label of
// keylens_tyk_gateway_changes_skipped_total).
const (
	skippedRefused = "refused" // the gateway refused it
	skippedStore   = "store"   // the store could not read what it names
)

// maxAnsweredAttempts bounds the attempts at a change the gateway answers
// with a 500: Tyk answers so when a policy is not found, which no retry
// mends. maxStoreAttempts bounds those failing on the store (a secret that
// no longer opens): about 3 s of backoff.
const (
	maxAnsweredAttempts = 5
	maxStoreAttempts    = 6
)

// givesUp decides whether a change that failed attempt times is skipped,
// and why: never while the gateway does not answer or says it is
// overloaded or unavailable (the change waits for it); at once for a 4xx;
// after maxAnsweredAttempts for any other answer; after maxStoreAttempts
// for a failure of the store.
func givesUp(err error, attempt int) string {
	if !IsGateway(err) {
		if attempt >= maxStoreAttempts {
			return skippedStore
		}
		return ""
	}
	switch s := StatusOf(err); {
	case s == 0 || s == http.StatusTooManyRequests || s == http.StatusRequestTimeout ||
		s == http.StatusBadGateway || s == http.StatusServiceUnavailable || s == http.StatusGatewayTimeout:
		return ""
	case s < 500:
		return skippedRefused
	case attempt >= maxAnsweredAttempts:
		return skippedRefused
	}
	return ""
}

// Apply makes the gateway agree with the store about what change c names.
func (o *Outbox) Apply(ctx context.Context, c keylens.Change) error {
	switch c.Kind {
	case keylens.ChangeKeyUpdated, keylens.ChangeKeyRevoked, keylens.ChangeKeyRotated:
		// A rotated key gets its grace end as expires, so that the
		// gateway itself stops it then; it is deleted when the store
		// removes it (key_revoked).
		return o.applyKey(ctx, c.KeyHash)
	case keylens.ChangeQuotaReset:
		return o.resetQuota(ctx, c.KeyHash)
	case keylens.ChangeDeveloper:
		return o.applyDeveloper(ctx, c.DeveloperID)
	case keylens.ChangeOAuthRemoved:
		d, err := o.Store.FindDeveloperByID(ctx, c.DeveloperID)
		if err == nil && hasClient(d, c.ClientID) {
			return nil // rewritten with the developer, not removed
		} else if err != nil && keylens.ErrorCode(err) != keylens.ENOTFOUND {
			return err
		}
		return o.Client.DeleteOAuthClientEverywhere(ctx, c.ClientID)
	}
	// key_added: approval created the key already (one imported with a
	// developer object has no raw key to create); unknown kinds are for
	// other readers.
	return nil
}

// applyDeveloper rewrites developer devID's keys and OAuth clients. A
// deleted developer's keys and clients have changes of their own.
func (o *Outbox) applyDeveloper(ctx context.Context, devID string) error {
	d, err := o.Store.FindDeveloperByID(ctx, devID)
	if keylens.ErrorCode(err) == keylens.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	keys, err := o.Store.FindDeveloperKeys(ctx, devID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := o.applyKey(ctx, k.Hash); err != nil {
			return err
		}
	}
	return o.applyClients(ctx, d)
}

// applyClients makes the gateway's copies of d's OAuth clients follow d.
// An active developer's client carries their metadata (created again
// when the gateway lacks it, as after a reactivation). A deactivated
// developer's client loses every token (revoke_all, with its secret and
// org) and is then deleted, so that it cannot get new ones; when the
// developer is reactivated it is created again, without the old tokens.
func (o *Outbox) applyClients(ctx context.Context, d *keylens.Developer) error {
	if len(d.OAuthClients) == 0 {
		return nil
	}
	apis, err := o.Client.APIs(ctx)
	if err != nil {
		return err
	}
	owner := d.Owner()
	for _, policy := range slices.Sorted(maps.Keys(d.OAuthClients)) {
		for _, c := range d.OAuthClients[policy] {
			want := OAuthClient{ClientID: c.ClientID, Secret: c.Secret, RedirectURI: c.RedirectURI, PolicyID: policy,
				MetaData: Meta(owner, nil), Description: c.AppDescription}
			if err := o.applyClient(ctx, apis, d, want); err != nil {
				return fmt.Errorf("OAuth client %s: %w", c.ClientID, err)
			}
		}
	}
	return nil
}

func (o *Outbox) applyClient(ctx context.Context, apis []API, d *keylens.Developer, want OAuthClient) error {
	var held []string
	for _, api := range apis {
		if !api.UseOAuth2 {
			continue
		}
		got, err := o.Client.GetOAuthClient(ctx, api.APIID, want.ClientID)
		if IsNotFound(err) {
			continue
		} else if err != nil {
			return err
		}
		held = append(held, api.APIID)
		if d.Inactive || (got.RedirectURI == want.RedirectURI && got.PolicyID == want.PolicyID &&
			got.Description == want.Description && canonical(got.MetaData) == canonical(want.MetaData)) {
			continue
		}
		if err := o.Client.UpdateOAuthClient(ctx, api.APIID, want); err != nil {
			return err
		}
	}
	switch {
	case d.Inactive && len(held) > 0:
		if err := o.Client.RevokeAllTokens(ctx, want.ClientID, want.Secret, d.OrgID); err != nil {
			return err
		}
		for _, api := range held {
			if err := o.Client.DeleteOAuthClient(ctx, api, want.ClientID); err != nil && !IsNotFound(err) {
				return err
			}
		}
	case !d.Inactive && len(held) == 0:
		if _, err := o.Client.CreateOAuthClient(ctx, want); err != nil {
			return err
		}
	}
	return nil
}

// resetQuota writes the session of the key with hash back without
// suppress_reset: the gateway then resets its quota counters.
func (o *Outbox) resetQuota(ctx context.Context, hash string) error {
	cred, err := o.Store.ResolveKey(ctx, hash)
	if keylens.ErrorCode(err) == keylens.ENOTFOUND {
		return nil // revoked since: its own change deletes it
	} else if err != nil {
		return err
	}
	s, err := o.Client.GetKey(ctx, hash)
	if IsNotFound(err) {
		o.logger().Warn("a key whose quota was reset is not in the Tyk gateway; keylens tyk sync reports it", "key_hash", hash)
		return nil
	} else if err != nil {
		return err
	}
	DesiredFor(&cred.Key, cred.Owner, o.Inactive.id()).Apply(s)
	return o.Client.PutKey(ctx, hash, s, false)
}

func hasClient(d *keylens.Developer, clientID string) bool {
	for _, cs := range d.OAuthClients {
		for _, c := range cs {
			if c.ClientID == clientID {
				return true
			}
		}
	}
	return false
}

// applyKey deletes the key with hash from the gateway when the store no
// longer has it, and otherwise rewrites its policies, alias, metadata and
// activation where they differ, keeping its quota counters.
func (o *Outbox) applyKey(ctx context.Context, hash string) error {
	cred, err := o.Store.ResolveKey(ctx, hash)
	if keylens.ErrorCode(err) == keylens.ENOTFOUND {
		if err := o.Client.DeleteKey(ctx, hash); err != nil && !IsNotFound(err) {
			return err
		}
		return nil
	} else if err != nil {
		return err
	}
	s, err := o.Client.GetKey(ctx, hash)
	if IsNotFound(err) {
		o.logger().Warn("a changed key is not in the Tyk gateway (issued before provisioning was configured?); keylens tyk sync reports it",
			"key_hash", hash)
		return nil
	} else if err != nil {
		return err
	}
	return Reconcile(ctx, o.Client, hash, s, DesiredFor(&cred.Key, cred.Owner, o.Inactive.id()))
}

// Reconcile rewrites session s of the key with hash to say d: nothing
// when it does already, only the policies through the policy endpoint
// when only they differ, else the whole session with suppress_reset.
// Either way the key's quota counters stay.
func Reconcile(ctx context.Context, c *Client, hash string, s Session, d Desired) error {
	diff := Compare(s, d)
	switch {
	case diff == (Difference{}):
		return nil
	case diff == Difference{Policies: true}:
		return c.SetKeyPolicies(ctx, hash, d.Policies)
	}
	d.Apply(s)
	return c.PutKey(ctx, hash, s, true)
}

// Difference says which parts of a session differ from Desired.
type Difference struct {
	Policies bool // apply_policies
	Meta     bool // alias, meta_data, is_inactive, org_id, or a replaced key's expires
}

// Compare tells how session s differs from d.
func Compare(s Session, d Desired) Difference {
	// A session with policies loses its own is_inactive when written: it
	// counts only for one without.
	inactive, _ := s["is_inactive"].(bool)
	inactiveDiffers := len(d.Policies) == 0 && inactive != d.Inactive
	return Difference{
		Policies: !slices.Equal(s.Policies(), d.Policies),
		Meta: s.String("alias") != d.Alias || inactiveDiffers || s.String("org_id") != d.OrgID ||
			canonical(s.Meta()) != canonical(d.Meta) || (d.Expires != 0 && s.Expires() != d.Expires),
	}
}

// canonical is v as JSON with sorted keys and numbers as the gateway
// writes them, for comparison; an empty map and none are the same.
func canonical(v map[string]any) string {
	if len(v) == 0 {
		return "{}"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var back any
	if json.Unmarshal(b, &back) != nil {
		return ""
	}
	b, _ = json.Marshal(back)
	return string(b)
}

func (o *Outbox) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// Metrics are the outbox's Prometheus collectors; a nil *Metrics records
// nothing.
type Metrics struct {
	reg         prometheus.Registerer
	appliedN    prometheus.Counter
	failedN     prometheus.Counter
	skippedN    *prometheus.CounterVec
	delay       prometheus.Histogram
	watchedOnce atomic.Bool
}

// NewMetrics creates the outbox's collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		appliedN: prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_tyk_gateway_changes_applied_total",
			Help: "Changes applied to the Tyk gateway."}),
		failedN: prometheus.NewCounter(prometheus.CounterOpts{Name: "keylens_tyk_gateway_change_failures_total",
			Help: "Attempts to apply a change that the Tyk gateway failed or refused (each retry counts)."}),
		skippedN: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keylens_tyk_gateway_changes_skipped_total",
			Help: "Changes skipped, by reason: refused (by the Tyk gateway) or store (what they name could not be read); keylens tyk sync reports them and --fix applies them."},
			[]string{"reason"}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keylens_tyk_gateway_apply_delay_seconds",
			Help:    "Time from a change committing to the Tyk gateway having it.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}}),
	}
	if reg != nil {
		for _, r := range []string{skippedRefused, skippedStore} {
			m.skippedN.WithLabelValues(r) // both shown from the start
		}
		reg.MustRegister(m.appliedN, m.failedN, m.skippedN, m.delay)
	}
	return m
}

// watch registers the gauges that read o's state.
func (m *Metrics) watch(o *Outbox) {
	if m.reg == nil || !m.watchedOnce.CompareAndSwap(false, true) {
		return
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keylens_tyk_gateway_changes_pending",
			Help: "Changes committed and not yet applied to the Tyk gateway."},
			func() float64 { return float64(max(o.head.Load()-o.pos.Load(), 0)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keylens_tyk_gateway_oldest_pending_seconds",
			Help: "Age of the oldest change not yet applied to the Tyk gateway (0 when none waits)."},
			func() float64 {
				if n := o.oldestNano.Load(); n != 0 {
					return time.Since(time.Unix(0, n)).Seconds()
				}
				return 0
			}),
	)
}

func (m *Metrics) applied(delay time.Duration) {
	if m != nil {
		m.appliedN.Inc()
		m.delay.Observe(delay.Seconds())
	}
}

func (m *Metrics) failed() {
	if m != nil {
		m.failedN.Inc()
	}
}

func (m *Metrics) skipped(reason string) {
	if m != nil {
		m.skippedN.WithLabelValues(reason).Inc()
	}
}
