package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/guard"
	"github.com/keylens/keylens/mailer"
	"github.com/keylens/keylens/rest"
	"github.com/keylens/keylens/web"
)

// httpServer is a listener of the admin API or the developer portal.
type httpServer struct {
	m    *Main
	name string // in log lines and errors: "admin API", "developer portal"
	addr string
	srv  *http.Server
}

// listen binds the address now, so that a taken port fails start-up.
func (h *httpServer) listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", h.addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.name, err)
	}
	return ln, nil
}

// serve serves handler on ln until shutdown; onShutdown, when set, runs
// as shutdown begins.
func (h *httpServer) serve(ln net.Listener, handler http.Handler, onShutdown func()) {
	h.srv = &http.Server{
		Addr:              ln.Addr().String(),
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(h.m.logger.Handler(), slog.LevelWarn),
	}
	if onShutdown != nil {
		h.srv.RegisterOnShutdown(onShutdown)
	}
	h.m.logger.Info(h.name+" listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String())
	go func() {
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.m.logger.Error(h.name+" stopped", "err", err)
			h.m.serveErrs <- err
		}
	}()
}

// shutdown stops accepting and lets the requests in flight finish within
// ctx; those still running then are cut off and logged, which is not a
// failed shutdown.
func (h *httpServer) shutdown(ctx context.Context) {
	if h.srv == nil {
		return
	}
	if err := h.srv.Shutdown(ctx); err != nil {
		h.m.logger.Warn("admin requests still running at shutdown were cut off", "err", err)
		h.srv.Close()
	}
}

// adminServer serves the portal REST API and the admin console.
type adminServer struct {
	httpServer
	store     *storeComponent
	settings  *adminSettings
	outbox    *tykOutbox // nil without --tyk-gateway
	committer *committer
	signIn    *guard.SignIn
}

func (a *adminServer) Start(context.Context) error {
	c, db, log := &a.m.Config, a.store.db, a.m.logger
	api, err := rest.NewServer(rest.Config{
		Developers:   db,
		Catalogue:    db,
		Keys:         db,
		Changes:      db,
		Credentials:  db,
		Hits:         db,
		Tokens:       db,
		TokenAdmin:   db,
		Revoker:      a.outbox.revoker(),
		HitWriter:    a.committer.c,
		AdminKeyHash: a.settings.keyHash,
		Health:       func(r *http.Request) error { return db.Ping(r.Context()) },
		SignIn:       a.signIn,
		Logger:       log,
	})
	if err != nil {
		return err
	}
	console, err := web.NewConsole(web.ConsoleConfig{
		SiteConfig: web.SiteConfig{
			Developers: db, Catalogue: db, Keys: db, Hits: db, Sessions: db,
			URL:    c.PublicURL,
			SignIn: a.signIn,
			Logger: log, MaxRotationGrace: c.MaxRotationGrace,
		},
		Admins: db, Audit: db,
		AdminKeyHash: a.settings.keyHash,
		Gravatar:     c.ConsoleGravatar,
		CentralJWT:   c.centralJWT(),
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(web.Prefix, console.Handler())
	mux.Handle("GET /favicon.ico", web.Favicon) // for the console's pages; without the admin key
	mux.Handle("/", api.Handler())
	ln, err := a.listen()
	if err != nil {
		return err
	}
	// Shutdown ends the change feed's long polls at once.
	a.serve(ln, mux, api.Shutdown)
	urls := a.m.urls
	urls["admin"] = "http://" + a.srv.Addr
	urls["console"] = urls["admin"] + web.Prefix
	if c.PublicURL != "" {
		urls["console"] = strings.TrimSuffix(c.PublicURL, "/") + web.Prefix
	}
	log.Info("admin console", "url", urls["console"])
	return nil
}

func (a *adminServer) Close(ctx context.Context) error {
	a.shutdown(ctx)
	return nil
}

// portalServer serves the developer portal (--portal-addr). Its sessions
// live in the store with the console's, and its sign-ins count in the same
// limiters.
type portalServer struct {
	httpServer
	store  *storeComponent
	outbox *tykOutbox // nil without --tyk-gateway
	signIn *guard.SignIn
	portal *web.Portal
}

func (p *portalServer) Start(context.Context) error {
	c, db, log := &p.m.Config, p.store.db, p.m.logger
	ln, err := p.listen()
	if err != nil {
		return err
	}
	portalURL := strings.TrimSuffix(c.PortalURL, "/")
	if portalURL == "" {
		portalURL = "http://" + ln.Addr().String()
	}
	send, err := mailer.New(c.SMTPURL, c.MailFrom, log)
	if err != nil {
		ln.Close()
		return err
	}
	if c.SMTPURL == "" {
		log.Warn("no --smtp-url: the developer portal's emails (password reset links) are written to this log, not sent")
	}
	if c.secretsKey == nil {
		log.Warn("no --secrets-key-file: credentials approved for portal requests wait in the store in the clear until their developer's next visit shows them")
	}
	revoker := p.outbox.revoker()
	if revoker == nil {
		revoker = keylens.LocalRevoker{Store: db}
	}
	portal, err := web.NewPortal(web.PortalConfig{
		SiteConfig: web.SiteConfig{
			Developers: db, Catalogue: db, Keys: db, Hits: db, Sessions: db,
			URL:    portalURL,
			SignIn: p.signIn,
			Logger: log, MaxRotationGrace: c.MaxRotationGrace,
		},
		Accounts: db, Mailer: send, Revoker: revoker, CentralJWT: c.centralJWT(),
	})
	if err != nil {
		ln.Close()
		return err
	}
	p.portal = portal
	p.serve(ln, portal.Handler(), nil)
	p.m.urls["portal"] = portalURL
	return nil
}

// Close shuts the listener down, then waits for the emails being sent
// (each on a deadline of its own).
func (p *portalServer) Close(ctx context.Context) error {
	p.shutdown(ctx)
	if p.portal != nil {
		p.portal.Wait()
	}
	return nil
}
