package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/rest"
	"github.com/keylens/keylens/sqlstore"
	"github.com/keylens/keylens/tykgateway"
)

// storeComponent opens the store (or, for a --portal sidecar, a client of
// the portal's admin API) and checks the secrets at rest.
type storeComponent struct {
	m       *Main
	db      *sqlstore.DB // nil with --portal
	backend backend      // what the sidecar reads: db, or a portal client
}

func (s *storeComponent) Start(ctx context.Context) error {
	c, log := &s.m.Config, s.m.logger
	if c.Portal != "" {
		// Validate has checked the URL.
		s.backend, _ = rest.NewClient(c.Portal, c.AdminKey)
		log.Info("reading from the portal", "portal", c.Portal)
		return nil
	}
	db, err := sqlstore.Open(ctx, c.Store)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	s.db, s.backend = db, db
	db.Logger = log
	db.KeyHashAlgorithm = c.KeyHash
	db.CentralJWT = c.centralJWT()
	if !s.m.SidecarOnly {
		db.MaxRotationGrace = c.MaxRotationGrace
	}
	if c.secretsKey != nil {
		if err := db.UseSecretsKey(c.secretsKey); err != nil {
			return err
		}
	}
	if err := db.CheckSecrets(ctx); err != nil {
		return fmt.Errorf("secrets at rest: %w", err)
	}
	// A key set on a store that held secrets in the clear seals them
	// now, so that none stays readable in the file.
	if n, err := db.SealCleartext(ctx); err != nil {
		return fmt.Errorf("secrets at rest: sealing those stored in the clear: %w", err)
	} else if n > 0 {
		log.Info("sealed secrets stored in the clear before the secrets key was set", "secrets", n)
	}
	db.StartCompactor() // hits a previous run left in the hit log, and those to come
	if path, ok := strings.CutPrefix(c.Store, "sqlite:"); ok {
		log.Info("store open", "store", c.Store, "hit_counters", sqlstore.AnalyticsPath(path), "hit_log", sqlstore.HitLogPath(path))
	} else {
		log.Info("store open", "store", redactStore(c.Store))
	}
	return nil
}

func (s *storeComponent) Close(context.Context) error {
	if s.db == nil {
		return nil
	}
	return s.db.Close()
}

// adminSettings settles the admin key and the portal's org in the store.
type adminSettings struct {
	m       *Main
	store   *storeComponent
	keyHash [sha256.Size]byte
}

func (a *adminSettings) Start(ctx context.Context) error {
	var err error
	if a.keyHash, err = a.adminKeyHash(ctx); err != nil {
		return err
	}
	return a.settleOrgID(ctx)
}

func (a *adminSettings) Close(context.Context) error { return nil }

// adminKeyHash settles which admin key is in effect: the configured one, or
// the one whose hash the store holds, or a new one, generated, stored as a
// hash and printed this once.
func (a *adminSettings) adminKeyHash(ctx context.Context) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	if a.m.Config.AdminKey != "" {
		return sha256.Sum256([]byte(a.m.Config.AdminKey)), nil
	}
	var raw [24]byte
	_, _ = rand.Read(raw[:])
	key := hex.EncodeToString(raw[:])
	newHash := sha256.Sum256([]byte(key))
	stored, err := a.store.db.InitSetting(ctx, keylens.SettingAdminKeyHash, hex.EncodeToString(newHash[:]))
	if err != nil {
		return sum, fmt.Errorf("admin key: %w", err)
	}
	if stored == hex.EncodeToString(newHash[:]) {
		fmt.Fprintf(a.m.stdout, "\nkeylens generated an admin key. It is shown only this once; the store keeps only its hash.\n\n"+
			"    export KEYLENS_ADMIN_KEY=%s\n\nSend it as the Authorization header of portal API calls, and sign in to the admin console with it.\n\n", key)
	} else {
		a.m.logger.Info("using the admin key whose hash is in the store (set --admin-key or KEYLENS_ADMIN_KEY to use another)")
	}
	b, err := hex.DecodeString(stored)
	if err != nil || len(b) != sha256.Size {
		return sum, fmt.Errorf("admin key hash in the store is corrupt")
	}
	copy(sum[:], b)
	return sum, nil
}

// settleOrgID makes --org-id the portal's org: developers created from now
// on belong to it, and the keys keylens generates for them embed it.
// Developers already stored keep theirs.
func (a *adminSettings) settleOrgID(ctx context.Context) error {
	org, db := a.m.Config.OrgID, a.store.db
	if org == "" {
		return nil
	}
	prev, err := db.Setting(ctx, keylens.SettingOrgID)
	if err != nil && keylens.ErrorCode(err) != keylens.ENOTFOUND {
		return fmt.Errorf("org id: %w", err)
	}
	if prev == org {
		return nil
	}
	if err := db.PutSetting(ctx, keylens.SettingOrgID, org); err != nil {
		return fmt.Errorf("org id: %w", err)
	}
	if prev != "" {
		a.m.logger.Warn("the portal's org changes: developers created from now on, and their keys, carry the new org; developers already stored keep theirs",
			"from", prev, "to", org)
	} else {
		a.m.logger.Info("the portal's org", "org_id", org)
	}
	return nil
}

// tykOutbox connects the store to the Tyk gateway (--tyk-gateway):
// approvals create their credential there, and an outbox applies later
// changes. A refused secret is a configuration error; an unreachable
// gateway is not fatal (approvals fail with 502 and changes wait until it
// answers).
type tykOutbox struct {
	m       *Main
	store   *storeComponent
	outbox  *tykgateway.Outbox
	revoke  keylens.TokenRevoker
	cancel  context.CancelFunc
	stopped chan struct{}
}

func (t *tykOutbox) Start(ctx context.Context) error {
	c, log, db := &t.m.Config, t.m.logger, t.store.db
	client, err := tykgateway.New(c.TykGateway, c.TykSecret) // validated
	if err != nil {
		return usageError{err}
	}
	inactive, err := inactivePolicy(ctx, db, c.TykInactivePolicy)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pols, err := client.Policies(pctx)
	switch status := tykgateway.StatusOf(err); {
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		return usageError{fmt.Errorf("--tyk-gateway %s refused --tyk-secret (KEYLENS_TYK_SECRET): %w", client.URL(), err)}
	case err != nil:
		log.Warn("the Tyk gateway does not answer yet: approvals fail with 502 and changes wait until it does", "gateway", client.URL(), "err", err)
	default:
		log.Info("Tyk gateway reached: keys are provisioned there", "gateway", client.URL(), "policies", len(pols))
		t.warnMissingPolicies(ctx, pols)
		// Deactivation must stop keys: the inactive policy is there
		// before anything is provisioned, or provisioning does not start.
		if inactive.Create {
			err = inactive.Ensure(pctx, client)
		} else {
			err = inactive.Check(pctx, client)
		}
		switch {
		case errors.Is(err, tykgateway.ErrPolicyMissing):
			log.Warn(err.Error(), "policy", inactive.ID)
		case err != nil && tykgateway.IsGateway(err) && tykgateway.StatusOf(err) == 0:
			log.Warn("the Tyk gateway stopped answering while keylens checked the inactive policy; it is checked again before the first approval or change", "err", err)
		case err != nil:
			return usageError{fmt.Errorf("--tyk-gateway %s: %w", client.URL(), err)}
		case inactive.Create:
			log.Info("deactivated developers' keys get the inactive policy", "policy", inactive.ID, "org_id", inactive.OrgID)
		}
	}
	db.Provisioner = &tykgateway.Provisioner{Client: client, Inactive: inactive, Logger: log}
	// The gateway issues OAuth tokens to the clients it holds (and the
	// sidecars may issue keylens's own): the Tyk Classic Portal API's revocations go to both.
	t.revoke = tykgateway.Revoker{Local: keylens.LocalRevoker{Store: db}, Gateway: client, Clients: db}
	t.outbox = &tykgateway.Outbox{Store: db, Client: client, Inactive: inactive, Logger: log,
		Metrics: tykgateway.NewMetrics(t.m.registry)}
	if err := t.outbox.Start(ctx); err != nil {
		return fmt.Errorf("tyk gateway outbox: %w", err)
	}
	// It runs until Close, not until the signal: changes made by requests
	// in flight while the listeners drain still reach the gateway.
	bg, stop := context.WithCancel(context.Background())
	t.cancel, t.stopped = stop, make(chan struct{})
	go func() {
		defer close(t.stopped)
		// One outbox per store: two would interleave their writes to
		// the gateway (an older session written after a newer one).
		db.Exclusive(bg, sqlstore.LockTykOutbox, t.outbox.Run)
	}()
	return nil
}

// Close stops the outbox and waits for it: it uses the store.
func (t *tykOutbox) Close(context.Context) error {
	if t.cancel != nil {
		t.cancel()
		<-t.stopped
	}
	return nil
}

// revoker is where revocations go: nil (keylens's own tokens, rest's
// default) without a gateway.
func (t *tykOutbox) revoker() keylens.TokenRevoker {
	if t == nil {
		return nil
	}
	return t.revoke
}

// warnMissingPolicies logs catalogue policies the gateway lacks.
func (t *tykOutbox) warnMissingPolicies(ctx context.Context, pols []tykgateway.Policy) {
	cat, err := t.store.db.Catalogue(ctx)
	if err != nil {
		return
	}
	have := map[string]bool{}
	for _, p := range pols {
		have[p.PolicyID()] = true
	}
	for _, e := range cat.APIs {
		if !have[e.PolicyID] {
			t.m.logger.Warn("a catalogue policy is not in the Tyk gateway: its keys will not work there (keylens tyk sync lists them)", "policy", e.PolicyID)
		}
	}
}

// inactivePolicy is the policy that replaces a deactivated developer's on
// their keys: the one named by --tyk-inactive-policy, else keylens's own
// (created in the gateway), in the portal's org.
func inactivePolicy(ctx context.Context, db *sqlstore.DB, named string) (*tykgateway.InactivePolicy, error) {
	org, err := db.OrgID(ctx)
	if err != nil {
		return nil, fmt.Errorf("org id: %w", err)
	}
	if named != "" {
		return &tykgateway.InactivePolicy{ID: named, OrgID: org}, nil
	}
	return &tykgateway.InactivePolicy{ID: tykgateway.DefaultInactivePolicy, OrgID: org, Create: true}, nil
}

// changeRetention is how long the change feed remembers; a sidecar away for
// longer is told to drop its cache and start afresh.
const changeRetention = 24 * time.Hour

// pruner trims the change feed, applied hit batches and expired OAuth
// tokens hourly, until Close.
type pruner struct {
	m      *Main
	store  *storeComponent
	outbox *tykOutbox // nil without --tyk-gateway
	loop   background
}

func (p *pruner) Start(context.Context) error { p.loop.start(p.run); return nil }

// Close stops pruning and waits for a pass under way: it uses the store.
func (p *pruner) Close(context.Context) error { p.loop.stop(); return nil }

// background is a component's one goroutine, from start until stop.
type background struct {
	cancel  context.CancelFunc
	stopped chan struct{}
}

// start runs run in a goroutine until stop.
func (b *background) start(run func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel, b.stopped = cancel, make(chan struct{})
	go func() {
		defer close(b.stopped)
		run(ctx)
	}()
}

// stop cancels run's context and waits for it to return (nothing when
// start never ran).
func (b *background) stop() {
	if b.cancel != nil {
		b.cancel()
		<-b.stopped
	}
}

// pruneBefore is how far the change feed may be pruned: changeRetention,
// but never past a change the Tyk gateway has not been given yet.
func (p *pruner) pruneBefore(ctx context.Context) (time.Time, error) {
	before := time.Now().Add(-changeRetention)
	if p.outbox == nil {
		return before, nil
	}
	pending, _, err := p.store.db.ChangesSince(ctx, p.outbox.outbox.Position(), 1)
	if err != nil {
		return before, err
	}
	if len(pending) > 0 && pending[0].Time.Before(before) {
		before = pending[0].Time
	}
	return before, nil
}

func (p *pruner) run(ctx context.Context) {
	db, log := p.store.db, p.m.logger
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		before, err := p.pruneBefore(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("pruning the change feed failed", "err", err)
		} else if n, err := db.PruneChanges(ctx, before); err != nil && ctx.Err() == nil {
			log.Warn("pruning the change feed failed", "err", err)
		} else if n > 0 {
			log.Debug("pruned the change feed", "removed", n)
		}
		if err := db.PruneHitBatches(ctx, time.Now().Add(-changeRetention)); err != nil && ctx.Err() == nil {
			log.Warn("pruning applied hit batches failed", "err", err)
		}
		if n, err := db.PruneTokens(ctx, time.Now()); err != nil && ctx.Err() == nil {
			log.Warn("pruning expired OAuth tokens failed", "err", err)
		} else if n > 0 {
			log.Debug("pruned expired OAuth tokens", "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// keyExpirer removes replaced keys as their grace periods end, which
// records their revocation in the change feed for the sidecars, the
// plugins and the Tyk gateway. Every resolver refuses such a key from
// its stored end on anyway: the removal tidies and speeds up eviction,
// and a restart loses nothing, since the ends are stored.
type keyExpirer struct {
	m     *Main
	store *storeComponent
	loop  background
}

// maxExpiryWait bounds a wait for the next grace end: a rotation made by
// another process of the store may end sooner, and is heard only on
// PostgreSQL (not from another process writing the same SQLite file).
const maxExpiryWait = time.Minute

func (e *keyExpirer) Start(context.Context) error { e.loop.start(e.run); return nil }

// Close stops the expirer and waits for a pass under way: it uses the store.
func (e *keyExpirer) Close(context.Context) error { e.loop.stop(); return nil }

func (e *keyExpirer) run(ctx context.Context) {
	db, log := e.store.db, e.m.logger
	for ctx.Err() == nil {
		// Taken before the pass: a rotation committed during it wakes
		// the wait. Changed never polls, so an idle keylens spends
		// nothing here between grace ends.
		woken := db.Changed()
		wait := maxExpiryWait
		n, next, err := db.ExpireKeys(ctx)
		if n > 0 {
			log.Info("replaced keys reached the end of their grace period and were removed", "keys", n)
		}
		if !next.IsZero() {
			wait = min(wait, max(time.Until(next), 10*time.Millisecond))
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("removing keys whose grace period ended failed; retrying", "err", err)
			wait, woken = 5*time.Second, nil // the full retry wait
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-woken:
		case <-t.C:
		}
		t.Stop()
	}
}
