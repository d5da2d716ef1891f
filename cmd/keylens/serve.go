package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/valyala/fasthttp"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/analytics"
	"github.com/keylens/keylens/guard"
	"github.com/keylens/keylens/mailer"
	"github.com/keylens/keylens/rest"
	"github.com/keylens/keylens/sidecar"
	"github.com/keylens/keylens/sqlstore"
	"github.com/keylens/keylens/tykanalytics"
	"github.com/keylens/keylens/tykgateway"
	"github.com/keylens/keylens/web"
)

// Main is the serve and sidecar commands: ParseFlags, Run, Wait, Close.
type Main struct {
	Config Config
	// SidecarOnly runs the sidecar without the portal API (keylens sidecar).
	SidecarOnly bool

	stdout, stderr io.Writer
	logger         *slog.Logger
	db             *sqlstore.DB
	backend        backend // what the sidecar reads: db, or a portal client
	committer      *analytics.Committer
	registry       *prometheus.Registry
	tyk            *tykanalytics.Consumer
	tykRedis       *redis.Client
	outbox         *tykgateway.Outbox
	revoker        keylens.TokenRevoker // nil: keylens's own tokens (rest's default)
	outboxDone     chan struct{}
	servers        []*http.Server
	portal         *web.Portal
	urls           map[string]string // listener → its URL, for the ready file
	sidecar        *fasthttp.Server
	cancel         context.CancelFunc
	serveErrs      chan error
}

// NewMain returns a Main writing to stdout and stderr.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{stdout: stdout, stderr: stderr, serveErrs: make(chan error, 4), urls: map[string]string{}}
}

// Run opens the store, settles the admin key and starts both listeners. It
// returns once they listen; a listener that fails later is reported by Wait.
func (m *Main) Run(ctx context.Context) error {
	level, _ := parseLevel(m.Config.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if m.Config.LogFormat == "json" {
		m.logger = slog.New(slog.NewJSONHandler(m.stderr, opts))
	} else {
		m.logger = slog.New(slog.NewTextHandler(m.stderr, opts))
	}

	if m.Config.Portal != "" {
		// Validate has checked the URL.
		m.backend, _ = rest.NewClient(m.Config.Portal, m.Config.AdminKey)
		m.logger.Info("reading from the portal", "portal", m.Config.Portal)
	} else {
		db, err := sqlstore.Open(ctx, m.Config.Store)
		if err != nil {
			return fmt.Errorf("open store: %w", err)
		}
		m.db, m.backend = db, db
		db.KeyHashAlgorithm = m.Config.KeyHash
		db.CentralJWT = m.Config.centralJWT()
		if m.Config.secretsKey != nil {
			if err := db.UseSecretsKey(m.Config.secretsKey); err != nil {
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
			m.logger.Info("sealed secrets stored in the clear before the secrets key was set", "secrets", n)
		}
		m.logger.Info("store open", "store", redactStore(m.Config.Store))
	}
	db := m.db

	// The sidecar's background work (following the change feed, pruning)
	// stops with Close, not with the signal context: requests in flight
	// still need it while the listeners drain.
	bg, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	if err := m.startSidecar(bg); err != nil {
		return err
	}
	if err := m.startTyk(ctx); err != nil {
		return err
	}
	if m.SidecarOnly {
		return m.ready()
	}

	keyHash, err := m.adminKeyHash(ctx)
	if err != nil {
		return err
	}
	if err := m.settleOrgID(ctx); err != nil {
		return err
	}
	if err := m.startProvisioning(ctx, bg); err != nil {
		return err
	}
	// One limiter pair for every sign-in: a client guessing at the console
	// and at verify_credentials is counted once.
	signIn := rest.SignInLimits{PerAccount: guard.New(m.Config.LoginMaxFailures, m.Config.LoginFailureWindow),
		PerClient: guard.New(m.Config.LoginClientMaxFailures, m.Config.LoginFailureWindow)}
	api, err := rest.NewServer(rest.Config{
		Developers:   db,
		Catalogue:    db,
		Keys:         db,
		Changes:      db,
		Credentials:  db,
		Hits:         db,
		Tokens:       db,
		TokenAdmin:   db,
		Revoker:      m.revoker,
		HitWriter:    m.committer,
		AdminKeyHash: keyHash,
		Health:       func(r *http.Request) error { return db.Ping(r.Context()) },
		SignInLimits: signIn,
		Logger:       m.logger,
	})
	if err != nil {
		return err
	}
	console, err := web.New(web.Config{
		Developers: db, Catalogue: db, Keys: db, Hits: db, Admins: db, Sessions: db, Audit: db,
		AdminKeyHash: keyHash,
		Secure:       strings.HasPrefix(m.Config.PublicURL, "https://"),
		PublicHost:   publicHost(m.Config.PublicURL),
		Gravatar:     m.Config.ConsoleGravatar,
		PerAccount:   signIn.PerAccount, PerClient: signIn.PerClient,
		Logger: m.logger,
	})
	if err != nil {
		return err
	}
	admin := http.NewServeMux()
	admin.Handle(web.Prefix, console.Handler())
	admin.Handle("/", api.Handler())
	if err := m.listen("admin API", m.Config.AdminAddr, admin, api.Shutdown); err != nil {
		return err
	}
	m.urls["admin"] = "http://" + m.servers[len(m.servers)-1].Addr
	m.urls["console"] = m.urls["admin"] + web.Prefix
	if m.Config.PublicURL != "" {
		m.urls["console"] = strings.TrimSuffix(m.Config.PublicURL, "/") + web.Prefix
	}
	m.logger.Info("admin console", "url", m.urls["console"])
	if err := m.startPortal(db, signIn); err != nil {
		return err
	}
	go m.pruneChanges(bg)
	return m.ready()
}

// ready writes the ready file, when configured: the URL of every listener,
// written to a temporary file and renamed, so that a reader never sees half.
func (m *Main) ready() error {
	if m.Config.ReadyFile == "" {
		return nil
	}
	b, err := json.Marshal(m.urls)
	if err != nil {
		return err
	}
	tmp := m.Config.ReadyFile + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("--ready-file: %w", err)
	}
	if err := os.Rename(tmp, m.Config.ReadyFile); err != nil {
		return fmt.Errorf("--ready-file: %w", err)
	}
	return nil
}

// backend is what the sidecar reads: a store, or a portal's admin API.
type backend interface {
	sidecar.Store
	sidecar.Feed
	keylens.TokenService
	analytics.Store
	Ping(context.Context) error
}

var (
	_ backend = (*sqlstore.DB)(nil)
	_ backend = (*rest.Client)(nil)
)

// startSidecar builds the resolver over the store, follows the change feed
// and serves the sidecar.
func (m *Main) startSidecar(bg context.Context) error {
	c := m.Config
	reg := prometheus.NewRegistry()
	m.registry = reg
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	leeway := c.JWTLeeway
	if leeway == 0 {
		leeway = -1 // none; the resolver's zero is its default
	}
	res := sidecar.NewResolver(m.backend, sidecar.ResolverOptions{
		Size: c.CacheSize, TTL: c.CacheTTL, NegativeTTL: c.NegativeCacheTTL, JWTLeeway: leeway, BcryptConcurrency: c.BcryptConcurrency, MaxHeaderBytes: c.MaxHeaderBytes,
		Headers: c.Headers, Logger: m.logger, Metrics: sidecar.NewMetrics(reg),
	})
	if c.centralJWT() {
		if err := res.UseCentralJWT(sidecar.CentralJWT{JWKSURL: c.JWTJWKSURL, HMACSecret: []byte(c.JWTHMACSecret),
			PublicKey: c.jwtPublicKey, Issuer: c.JWTIssuer, Audience: c.JWTAudience, IdentityClaim: c.JWTIdentityClaim,
			MinRefresh: c.JWTJWKSRefresh}); err != nil {
			return fmt.Errorf("central JWT: %w", err)
		}
		if c.JWTJWKSURL != "" {
			go m.refreshJWKS(bg, res)
		}
	}
	m.committer = analytics.NewCommitter(m.backend, analytics.CommitterOptions{MaxQueuedRows: c.HitsMaxPending,
		Logger: m.logger, Metrics: analytics.NewMetrics(reg, c.MetricsMaxKeys)})
	cfg := sidecar.Config{Resolver: res, KeyHeader: c.KeyHeader, IntrospectSecret: c.IntrospectSecret,
		Gatherer: reg, Logger: m.logger, Hits: m.committer, HitsSecret: c.HitsSecret, Feed: m.backend,
		Tokens: m.backend, TokenTTL: c.OAuthTokenTTL}
	if c.Assertions {
		signer, err := sidecar.LoadSigner(c.AssertionKey, c.AssertionTTL)
		if err != nil {
			return fmt.Errorf("--assertion-key: %w", err)
		}
		cfg.Signer = signer
	}
	cfg.Healthy = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := m.backend.Ping(ctx); err != nil {
			if keylens.ErrorCode(err) == keylens.EFULL {
				return errors.New(keylens.ErrorMessage(err))
			}
			if c.Portal != "" {
				return fmt.Errorf("portal unreachable: %w", err)
			}
			return fmt.Errorf("store unreachable: %w", err)
		}
		if !res.FeedHealthy(35 * time.Second) {
			return errors.New("change feed not followed: revocations may arrive late")
		}
		return nil
	}
	go res.Follow(bg, m.backend)

	srv, err := sidecar.NewServer(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.SidecarAddr)
	if err != nil {
		return fmt.Errorf("sidecar: %w", err)
	}
	m.sidecar = srv.NewFastHTTPServer()
	m.urls["sidecar"] = "http://" + ln.Addr().String()
	m.logger.Info("sidecar listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String(),
		"assertions", c.Assertions, "cache_size", c.CacheSize)
	go func() {
		if err := m.sidecar.Serve(ln); err != nil {
			m.logger.Error("sidecar stopped", "err", err)
			m.serveErrs <- err
		}
	}()
	return nil
}

// startTyk consumes the gateway's analytics records from Redis into the
// committer, when --tyk-redis is set. An unreachable Redis is not fatal:
// the consumer retries, and the metrics say so.
func (m *Main) startTyk(ctx context.Context) error {
	c := m.Config
	if c.TykRedis == "" {
		return nil
	}
	opt, err := redis.ParseURL(c.TykRedis) // validated
	if err != nil {
		return fmt.Errorf("--tyk-redis: %s", redactedError(err, c.TykRedis))
	}
	opt.ClientName = "keylens"
	opt.Protocol = 2           // any Redis a gateway runs on
	opt.DisableIdentity = true // no CLIENT SETINFO, which older servers refuse
	opt.PoolSize = 4           // one consumer, and the length sampler
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	redis.SetLogger(redisLogger{m.logger})
	m.tykRedis = redis.NewClient(opt)
	consumer, err := tykanalytics.New(tykanalytics.Options{
		Redis: m.tykRedis, AnalyticsKey: c.TykAnalyticsKey, ConsumerID: c.tykConsumerID(),
		ChunkSize: c.TykChunkSize, PollInterval: c.TykPollInterval,
		Store: m.committer, Logger: m.logger, Metrics: tykanalytics.NewMetrics(m.registry),
	})
	if err != nil {
		return err
	}
	m.tyk = consumer
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	redacted := c.TykRedis
	if u, err := url.Parse(c.TykRedis); err == nil {
		redacted = u.Redacted()
	}
	if err := m.tykRedis.Ping(pctx).Err(); err != nil {
		m.logger.Warn("the Tyk gateway's Redis does not answer yet; retrying", "redis", redacted, "err", err)
	} else {
		m.logger.Info("Tyk gateway's Redis reached", "redis", redacted)
	}
	consumer.Start()
	return nil
}

// redisLogger sends go-redis's own messages to the log.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.Warn("redis client: " + fmt.Sprintf(format, v...))
}

// refreshJWKS fetches the identity provider's JWKS at start and every
// --jwt-jwks-refresh until ctx ends; a failure keeps the keys in use.
func (m *Main) refreshJWKS(ctx context.Context, res *sidecar.Resolver) {
	t := time.NewTicker(m.Config.JWTJWKSRefresh)
	defer t.Stop()
	for {
		if err := res.RefreshJWKS(ctx); err != nil && ctx.Err() == nil {
			m.logger.Warn("fetching the JWKS failed; the keys fetched before stay in use", "url", m.Config.JWTJWKSURL, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// changeRetention is how long the change feed remembers; a sidecar away for
// longer is told to drop its cache and start afresh.
const changeRetention = 24 * time.Hour

// startProvisioning connects the store to the Tyk gateway, when
// --tyk-gateway is set: approvals create their credential there, and an
// outbox applies later changes. A refused secret is a configuration
// error; an unreachable gateway is not fatal (approvals fail with 502 and
// changes wait until it answers).
func (m *Main) startProvisioning(ctx, bg context.Context) error {
	c := m.Config
	if c.TykGateway == "" {
		return nil
	}
	client, err := tykgateway.New(c.TykGateway, c.TykSecret) // validated
	if err != nil {
		return usageError{err}
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pols, err := client.Policies(pctx)
	switch status := tykgateway.StatusOf(err); {
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		return usageError{fmt.Errorf("--tyk-gateway %s refused --tyk-secret (KEYLENS_TYK_SECRET): %w", client.URL(), err)}
	case err != nil:
		m.logger.Warn("the Tyk gateway does not answer yet: approvals fail with 502 and changes wait until it does", "gateway", client.URL(), "err", err)
	default:
		m.logger.Info("Tyk gateway reached: keys are provisioned there", "gateway", client.URL(), "policies", len(pols))
		m.warnMissingPolicies(ctx, pols)
	}
	if c.TykInactivePolicy == "" {
		m.logger.Warn("--tyk-inactive-policy is not set: a deactivated developer's keys get is_inactive, which Tyk ignores for keys with policies (all portal keys): they keep working at the gateway until revoked")
	}
	m.db.Provisioner = &tykgateway.Provisioner{Client: client, InactivePolicy: c.TykInactivePolicy, Logger: m.logger}
	// The gateway issues OAuth tokens to the clients it holds (and the
	// sidecars may issue keylens's own): the seed's revocations go to both.
	m.revoker = tykgateway.Revoker{Local: keylens.LocalRevoker{Store: m.db}, Gateway: client, Clients: m.db}
	m.outbox = &tykgateway.Outbox{Store: m.db, Client: client, InactivePolicy: c.TykInactivePolicy, Logger: m.logger,
		Metrics: tykgateway.NewMetrics(m.registry)}
	if err := m.outbox.Start(ctx); err != nil {
		return fmt.Errorf("tyk gateway outbox: %w", err)
	}
	m.outboxDone = make(chan struct{})
	go func() {
		defer close(m.outboxDone)
		// One outbox per store: two would interleave their writes to
		// the gateway (an older session written after a newer one).
		m.db.Exclusive(bg, sqlstore.LockTykOutbox, m.outbox.Run)
	}()
	return nil
}

// warnMissingPolicies logs catalogue policies the gateway lacks.
func (m *Main) warnMissingPolicies(ctx context.Context, pols []tykgateway.Policy) {
	cat, err := m.db.Catalogue(ctx)
	if err != nil {
		return
	}
	have := map[string]bool{}
	for _, p := range pols {
		have[p.PolicyID()] = true
	}
	for _, e := range cat.APIs {
		if !have[e.PolicyID] {
			m.logger.Warn("a catalogue policy is not in the Tyk gateway: its keys will not work there (keylens tyk sync lists them)", "policy", e.PolicyID)
		}
	}
	if p := m.Config.TykInactivePolicy; p != "" && !have[p] {
		m.logger.Warn("--tyk-inactive-policy is not in the Tyk gateway: deactivating a developer will fail there", "policy", p)
	}
}

// usageError is a configuration the world refuses (a gateway secret):
// exit code 2, as for a bad flag.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// pruneBefore is how far the change feed may be pruned: changeRetention,
// but never past a change the Tyk gateway has not been given yet.
func (m *Main) pruneBefore(ctx context.Context) (time.Time, error) {
	before := time.Now().Add(-changeRetention)
	if m.outbox == nil {
		return before, nil
	}
	pending, _, err := m.db.ChangesSince(ctx, m.outbox.Position(), 1)
	if err != nil {
		return before, err
	}
	if len(pending) > 0 && pending[0].Time.Before(before) {
		before = pending[0].Time
	}
	return before, nil
}

// pruneChanges trims the change feed, applied hit batches and expired
// OAuth tokens hourly until ctx ends.
func (m *Main) pruneChanges(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		before, err := m.pruneBefore(ctx)
		if err != nil && ctx.Err() == nil {
			m.logger.Warn("pruning the change feed failed", "err", err)
		} else if n, err := m.db.PruneChanges(ctx, before); err != nil && ctx.Err() == nil {
			m.logger.Warn("pruning the change feed failed", "err", err)
		} else if n > 0 {
			m.logger.Debug("pruned the change feed", "removed", n)
		}
		if err := m.db.PruneHitBatches(ctx, time.Now().Add(-changeRetention)); err != nil && ctx.Err() == nil {
			m.logger.Warn("pruning applied hit batches failed", "err", err)
		}
		if n, err := m.db.PruneTokens(ctx, time.Now()); err != nil && ctx.Err() == nil {
			m.logger.Warn("pruning expired OAuth tokens failed", "err", err)
		} else if n > 0 {
			m.logger.Debug("pruned expired OAuth tokens", "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// adminKeyHash settles which admin key is in effect: the configured one, or
// the one whose hash the store holds, or a new one, generated, stored as a
// hash and printed this once.
func (m *Main) adminKeyHash(ctx context.Context) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	if m.Config.AdminKey != "" {
		return sha256.Sum256([]byte(m.Config.AdminKey)), nil
	}
	var raw [24]byte
	_, _ = rand.Read(raw[:])
	key := hex.EncodeToString(raw[:])
	newHash := sha256.Sum256([]byte(key))
	stored, err := m.db.InitSetting(ctx, keylens.SettingAdminKeyHash, hex.EncodeToString(newHash[:]))
	if err != nil {
		return sum, fmt.Errorf("admin key: %w", err)
	}
	if stored == hex.EncodeToString(newHash[:]) {
		fmt.Fprintf(m.stdout, "\nkeylens generated an admin key. It is shown only this once; the store keeps only its hash.\n\n"+
			"    export KEYLENS_ADMIN_KEY=%s\n\nSend it as the Authorization header of portal API calls, and sign in to the admin console with it.\n\n", key)
	} else {
		m.logger.Info("using the admin key whose hash is in the store (set --admin-key or KEYLENS_ADMIN_KEY to use another)")
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
func (m *Main) settleOrgID(ctx context.Context) error {
	org := m.Config.OrgID
	if org == "" {
		return nil
	}
	prev, err := m.db.Setting(ctx, keylens.SettingOrgID)
	if err != nil && keylens.ErrorCode(err) != keylens.ENOTFOUND {
		return fmt.Errorf("org id: %w", err)
	}
	if prev == org {
		return nil
	}
	if err := m.db.PutSetting(ctx, keylens.SettingOrgID, org); err != nil {
		return fmt.Errorf("org id: %w", err)
	}
	if prev != "" {
		m.logger.Warn("the portal's org changes: developers created from now on, and their keys, carry the new org; developers already stored keep theirs",
			"from", prev, "to", org)
	} else {
		m.logger.Info("the portal's org", "org_id", org)
	}
	return nil
}

// startPortal serves the developer portal on its own listener, unless
// --portal-addr is empty. Its sessions live in the store with the
// console's, and its sign-ins count in the same limiters.
func (m *Main) startPortal(db *sqlstore.DB, signIn rest.SignInLimits) error {
	if m.Config.PortalAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", m.Config.PortalAddr)
	if err != nil {
		return fmt.Errorf("developer portal: %w", err)
	}
	portalURL := strings.TrimSuffix(m.Config.PortalURL, "/")
	if portalURL == "" {
		portalURL = "http://" + ln.Addr().String()
	}
	send, err := mailer.New(m.Config.SMTPURL, m.Config.MailFrom, m.logger)
	if err != nil {
		ln.Close()
		return err
	}
	if m.Config.SMTPURL == "" {
		m.logger.Warn("no --smtp-url: the developer portal's emails (password reset links) are written to this log, not sent")
	}
	if m.Config.secretsKey == nil {
		m.logger.Warn("no --secrets-key-file: credentials approved for portal requests wait in the store in the clear until their developer's next visit shows them")
	}
	revoker := m.revoker
	if revoker == nil {
		revoker = keylens.LocalRevoker{Store: db}
	}
	m.portal, err = web.NewPortal(web.PortalSetup{
		Developers: db, Catalogue: db, Keys: db, Hits: db, Sessions: db, Accounts: db,
		Mailer: send, URL: portalURL, Revoker: revoker, CentralJWT: m.Config.centralJWT(),
		PerAccount: signIn.PerAccount, PerClient: signIn.PerClient,
		Logger: m.logger,
	})
	if err != nil {
		ln.Close()
		return err
	}
	m.serve("developer portal", ln, m.portal.Handler(), nil)
	m.urls["portal"] = portalURL
	return nil
}

// listen binds addr now, so a taken port fails start-up, and serves h;
// onShutdown, when set, runs as shutdown begins.
func (m *Main) listen(name, addr string, h http.Handler, onShutdown func()) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	m.serve(name, ln, h, onShutdown)
	return nil
}

// serve serves h on ln until Close.
func (m *Main) serve(name string, ln net.Listener, h http.Handler, onShutdown func()) {
	srv := &http.Server{
		Addr:              ln.Addr().String(),
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
	}
	if onShutdown != nil {
		srv.RegisterOnShutdown(onShutdown)
	}
	m.servers = append(m.servers, srv)
	m.logger.Info(name+" listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.logger.Error(name+" stopped", "err", err)
			m.serveErrs <- err
		}
	}()
}

// Wait blocks until ctx ends (a signal) or a listener fails.
func (m *Main) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		m.logger.Info("shutting down")
		return nil
	case err := <-m.serveErrs:
		return err
	}
}

// Shutdown budgets. Hits have their own, so that a slow admin client
// cannot use up the time acknowledged hits need to be committed.
const (
	adminShutdownBudget = 10 * time.Second
	hitsShutdownBudget  = 30 * time.Second
)

// Close shuts down in the order that loses no acknowledged hit: the Tyk
// analytics consumer stops taking chunks and finishes the one in hand; new
// hits are refused (503, the writer keeps them) while the batches taken are
// committed and their requests answered; meanwhile the admin API finishes
// its requests in flight, on a budget of its own. Then the store closes.
// An admin client still sending after its budget is cut off and logged:
// that is not a failed shutdown.
func (m *Main) Close() error {
	if m.Config.ReadyFile != "" {
		_ = os.Remove(m.Config.ReadyFile) // no longer ready
	}
	var wg sync.WaitGroup
	var hitErrs []error
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hitsShutdownBudget)
		defer cancel()
		if m.tyk != nil {
			// Takes no more chunks; the one in hand is committed and
			// deleted, or left whole for the next start.
			if err := m.tyk.Close(ctx); err != nil {
				m.logger.Warn("Tyk analytics", "err", err)
			}
		}
		if m.tykRedis != nil {
			_ = m.tykRedis.Close()
		}
		if m.committer != nil {
			// Refuses new batches at once; returns when the queue is
			// committed.
			if err := m.committer.Close(ctx); err != nil {
				hitErrs = append(hitErrs, err)
			}
		}
		if m.sidecar != nil {
			if err := m.sidecar.ShutdownWithContext(ctx); err != nil {
				hitErrs = append(hitErrs, fmt.Errorf("sidecar: %w", err))
			}
		}
	})
	for _, srv := range m.servers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), adminShutdownBudget)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				m.logger.Warn("admin requests still running at shutdown were cut off", "err", err)
				srv.Close()
			}
		})
	}
	wg.Wait()
	if m.portal != nil {
		m.portal.Wait() // emails being sent (each on a deadline of its own)
	}
	errs := hitErrs
	if m.cancel != nil {
		m.cancel()
	}
	if m.outboxDone != nil {
		<-m.outboxDone // it uses the store
	}
	if m.db != nil {
		errs = append(errs, m.db.Close())
	}
	if m.logger != nil {
		if err := errors.Join(errs...); err != nil {
			m.logger.Error("shutdown", "err", err)
		}
		m.logger.Info("stopped")
	}
	return errors.Join(errs...)
}

// publicHost is the host[:port] of --public-url ("" when unset).
func publicHost(publicURL string) string {
	if u, err := url.Parse(publicURL); err == nil {
		return u.Host
	}
	return ""
}

func indent(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = "  - " + l
	}
	return strings.Join(lines, "\n")
}
