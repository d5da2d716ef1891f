package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/valyala/fasthttp"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/analytics"
	"github.com/keylens/keylens/sidecar"
	"github.com/keylens/keylens/tykanalytics"
)

// feed is the sidecar's resolver over the store: it follows the change
// feed (and refreshes the JWKS) until Close, not until the signal:
// requests in flight still need it while the listeners drain.
type feed struct {
	m      *Main
	store  *storeComponent
	res    *sidecar.Resolver
	cancel context.CancelFunc
}

func (f *feed) Start(context.Context) error {
	c := &f.m.Config
	leeway := c.JWTLeeway
	if leeway == 0 {
		leeway = -1 // none; the resolver's zero is its default
	}
	basicMax := c.BasicMaxFailures
	if basicMax == 0 {
		basicMax = -1 // no limit; likewise
	}
	f.res = sidecar.NewResolver(f.store.backend, sidecar.ResolverOptions{
		Size: c.CacheSize, TTL: c.CacheTTL, NegativeTTL: c.NegativeCacheTTL, JWTLeeway: leeway, BcryptConcurrency: c.BcryptConcurrency, MaxHeaderBytes: c.MaxHeaderBytes,
		BasicMaxFailures: basicMax, BasicFailureWindow: c.BasicFailureWindow,
		Headers: c.Headers, Logger: f.m.logger, Metrics: sidecar.NewMetrics(f.m.registry),
	})
	bg, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	if c.centralJWT() {
		if err := f.res.UseCentralJWT(sidecar.CentralJWT{JWKSURL: c.JWTJWKSURL, HMACSecret: []byte(c.JWTHMACSecret),
			PublicKey: c.jwtPublicKey, Issuer: c.JWTIssuer, Audience: c.JWTAudience, IdentityClaim: c.JWTIdentityClaim,
			MinRefresh: c.JWTJWKSRefresh}); err != nil {
			return fmt.Errorf("central JWT: %w", err)
		}
		if c.JWTJWKSURL != "" {
			go f.refreshJWKS(bg)
		}
	}
	go f.res.Follow(bg, f.store.backend)
	return nil
}

func (f *feed) Close(context.Context) error {
	if f.cancel != nil {
		f.cancel()
	}
	return nil
}

// refreshJWKS fetches the identity provider's JWKS at start and every
// --jwt-jwks-refresh until ctx ends; a failure keeps the keys in use.
func (f *feed) refreshJWKS(ctx context.Context) {
	t := time.NewTicker(f.m.Config.JWTJWKSRefresh)
	defer t.Stop()
	for {
		if err := f.res.RefreshJWKS(ctx); err != nil && ctx.Err() == nil {
			f.m.logger.Warn("fetching the JWKS failed; the keys fetched before stay in use", "url", f.m.Config.JWTJWKSURL, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// committer commits the hits POST /hits, the admin API and the Tyk
// analytics consumer report. Its Close is the last resort: hitsDrain
// closes it while the listeners drain.
//
// With --portal the backend is the portal's REST client, whose
// /api/keylens/hits feeds the portal's own committer: two committers on
// the path, by design. Each hop needs its own group commit and
// backpressure: the sidecar's groups many POST /hits into one request,
// bounds what its gateway may queue (--hits-max-pending, 503 with
// Retry-After), counts per-key metrics and limits a commit attempt, while
// the portal's bounds what every sidecar together may queue on its store.
// Acknowledged still means stored: the sidecar answers only once the
// portal has committed.
type committer struct {
	m     *Main
	store *storeComponent
	c     *analytics.Committer
}

func (c *committer) Start(context.Context) error {
	cfg := &c.m.Config
	c.c = analytics.NewCommitter(c.store.backend, analytics.CommitterOptions{MaxQueuedRows: cfg.HitsMaxPending,
		MaxBacklog: cfg.HitsMaxUnfolded, Logger: c.m.logger, Metrics: analytics.NewMetrics(c.m.registry, cfg.MetricsMaxKeys)})
	return nil
}

// Close refuses new batches and returns when the queue is committed (at
// once when hitsDrain did so).
func (c *committer) Close(ctx context.Context) error {
	if c.c == nil {
		return nil
	}
	return c.c.Close(ctx)
}

// hitsDrain starts nothing; its Close, before the sidecar stops
// accepting, makes the committer refuse new hits (503 with Retry-After:
// their writers keep them) and commit those taken, answering their
// requests.
type hitsDrain struct{ committer *committer }

func (h *hitsDrain) Start(context.Context) error { return nil }

func (h *hitsDrain) Close(ctx context.Context) error { return h.committer.Close(ctx) }

// sidecarServer serves the sidecar: lookup, introspection, forward-auth,
// POST /hits, OAuth tokens.
type sidecarServer struct {
	m         *Main
	store     *storeComponent
	feed      *feed
	committer *committer
	srv       *fasthttp.Server
}

func (s *sidecarServer) Start(context.Context) error {
	c, backend, res := &s.m.Config, s.store.backend, s.feed.res
	cfg := sidecar.Config{Resolver: res, KeyHeader: c.KeyHeader, IntrospectSecret: c.IntrospectSecret,
		Gatherer: s.m.registry, Logger: s.m.logger, Hits: s.committer.c, HitsAndChangesSecret: c.HitsAndChangesSecret, Feed: backend,
		Tokens: backend, TokenTTL: c.OAuthTokenTTL}
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
		if err := backend.Ping(ctx); err != nil {
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
	srv, err := sidecar.NewServer(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.SidecarAddr)
	if err != nil {
		return fmt.Errorf("sidecar: %w", err)
	}
	s.srv = srv.NewFastHTTPServer()
	s.m.urls["sidecar"] = "http://" + ln.Addr().String()
	s.m.logger.Info("sidecar listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String(),
		"assertions", c.Assertions, "cache_size", c.CacheSize)
	go func() {
		if err := s.srv.Serve(ln); err != nil {
			s.m.logger.Error("sidecar stopped", "err", err)
			s.m.serveErrs <- err
		}
	}()
	return nil
}

// Close stops accepting and finishes the requests in flight.
func (s *sidecarServer) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	if err := s.srv.ShutdownWithContext(ctx); err != nil {
		return fmt.Errorf("sidecar: %w", err)
	}
	return nil
}

// tykConsumer consumes the gateway's analytics records from Redis into the
// committer (--tyk-redis). An unreachable Redis is not fatal: the consumer
// retries, and the metrics say so.
type tykConsumer struct {
	m         *Main
	committer *committer
	redis     *redis.Client
	consumer  *tykanalytics.Consumer
}

func (t *tykConsumer) Start(ctx context.Context) error {
	c := &t.m.Config
	opt, err := redis.ParseURL(c.TykRedis) // validated
	if err != nil {
		return fmt.Errorf("--tyk-redis: %s", redactedError(err, c.TykRedis))
	}
	opt.ClientName = "keylens"
	opt.Protocol = 2           // any Redis a gateway runs on
	opt.DisableIdentity = true // no CLIENT SETINFO, which older servers refuse
	opt.PoolSize = 4           // one consumer, and the length sampler
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	redis.SetLogger(redisLogger{t.m.logger})
	t.redis = redis.NewClient(opt)
	consumer, err := tykanalytics.New(tykanalytics.Options{
		Redis: t.redis, AnalyticsKey: c.TykAnalyticsKey, ConsumerID: c.tykConsumerID(),
		ChunkSize: c.TykChunkSize, PollInterval: c.TykPollInterval,
		Store: t.committer.c, Logger: t.m.logger, Metrics: tykanalytics.NewMetrics(t.m.registry),
	})
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	redacted := c.TykRedis
	if u, err := url.Parse(c.TykRedis); err == nil {
		redacted = u.Redacted()
	}
	if err := t.redis.Ping(pctx).Err(); err != nil {
		t.m.logger.Warn("the Tyk gateway's Redis does not answer yet; retrying", "redis", redacted, "err", err)
	} else {
		t.m.logger.Info("Tyk gateway's Redis reached", "redis", redacted)
	}
	t.consumer = consumer
	consumer.Start()
	return nil
}

// Close takes no more chunks; the one in hand is committed and deleted,
// or left whole for the next start (logged, not a failed shutdown).
func (t *tykConsumer) Close(ctx context.Context) error {
	if t.consumer != nil {
		if err := t.consumer.Close(ctx); err != nil {
			t.m.logger.Warn("Tyk analytics", "err", err)
		}
	}
	if t.redis != nil {
		_ = t.redis.Close()
	}
	return nil
}

// redisLogger sends go-redis's own messages to the log.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.Warn("redis client: " + fmt.Sprintf(format, v...))
}
