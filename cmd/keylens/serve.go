package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/guard"
	"github.com/keylens/keylens/rest"
	"github.com/keylens/keylens/sidecar"
	"github.com/keylens/keylens/sqlstore"
)

// Main is the serve and sidecar commands: ParseFlags, Run, Wait, Close.
type Main struct {
	Config Config
	// SidecarOnly runs the sidecar without the portal API (keylens sidecar).
	SidecarOnly bool

	stdout, stderr io.Writer
	logger         *slog.Logger
	registry       *prometheus.Registry
	urls           map[string]string // listener → its URL, for the ready file
	serveErrs      chan error

	// started are the components whose Start was called, in order; Close
	// closes them in reverse.
	started []component
}

// NewMain returns a Main writing to stdout and stderr.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{stdout: stdout, stderr: stderr, serveErrs: make(chan error, 4), urls: map[string]string{}}
}

// Shutdown budgets. Hits have their own, so that a slow admin client
// cannot use up the time acknowledged hits need to be committed.
const (
	adminShutdownBudget = 10 * time.Second
	hitsShutdownBudget  = 30 * time.Second
)

// components builds every component serve (or sidecar) runs, started in
// the order returned and closed in reverse; nothing is started yet.
//
// What the order guarantees, closing (the reverse of the list):
//   - the ready file is removed first (Close, before any component);
//   - then the listeners shut down all at once, each on its own budget, so
//     that a slow admin client cannot use up the time hits need:
//   - the hits path (30s): the Tyk analytics consumer takes no more
//     chunks and commits or leaves whole the one in hand; then the
//     committer refuses new hits (503; their writers keep them) and
//     commits those taken, answering their requests; then the sidecar
//     stops accepting and finishes the requests in flight;
//   - the admin listener (10s): its long polls end at once, the
//     requests in flight finish (cut off and logged after the budget);
//   - the developer portal (10s): likewise, then the emails being sent;
//   - only then does the background work stop: the pruner, the Tyk
//     gateway outbox (waited for: it uses the store), the change feed and
//     JWKS refresh (requests in flight needed them while the listeners
//     drained);
//   - the store closes last, once nothing uses it.
func (m *Main) components() []component {
	c := &m.Config
	// One sign-in flow for every sign-in: a client guessing at the
	// console and at verify_credentials is counted once.
	policy := guard.DefaultPolicy
	policy.Window, policy.PairMax, policy.ClientMax, policy.AccountMax =
		c.LoginFailureWindow, c.LoginMaxFailures, c.LoginClientMaxFailures, c.LoginAccountMaxFailures
	signIn := guard.NewSignIn(policy)

	store := &storeComponent{m: m}
	feed := &feed{m: m, store: store}
	committer := &committer{m: m, store: store}
	hits := budget(hitsShutdownBudget,
		&sidecarServer{m: m, store: store, feed: feed, committer: committer},
		&hitsDrain{committer: committer})
	if c.TykRedis != "" {
		hits.parts = append(hits.parts, &tykConsumer{m: m, committer: committer})
	}
	if m.SidecarOnly {
		return []component{store, feed, budget(hitsShutdownBudget, committer), together(hits)}
	}

	settings := &adminSettings{m: m, store: store}
	order := []component{store, feed, settings}
	var outbox *tykOutbox
	if c.TykGateway != "" {
		outbox = &tykOutbox{m: m, store: store}
		order = append(order, outbox)
	}
	listeners := together(hits, budget(adminShutdownBudget,
		&adminServer{httpServer: httpServer{m: m, name: "admin API", addr: c.AdminAddr},
			store: store, settings: settings, outbox: outbox, committer: committer, signIn: signIn}))
	if c.PortalAddr != "" {
		listeners.parts = append(listeners.parts, budget(adminShutdownBudget,
			&portalServer{httpServer: httpServer{m: m, name: "developer portal", addr: c.PortalAddr},
				store: store, outbox: outbox, signIn: signIn}))
	}
	return append(order,
		&pruner{m: m, store: store, outbox: outbox},
		&keyExpirer{m: m, store: store},
		budget(hitsShutdownBudget, committer),
		listeners)
}

// Run starts every component in order and writes the ready file. It
// returns once the listeners listen; a listener that fails later is
// reported by Wait. After a failure, Close closes what was started.
func (m *Main) Run(ctx context.Context) error {
	level, _ := parseLevel(m.Config.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if m.Config.LogFormat == "json" {
		m.logger = slog.New(slog.NewJSONHandler(m.stderr, opts))
	} else {
		m.logger = slog.New(slog.NewTextHandler(m.stderr, opts))
	}
	m.registry = prometheus.NewRegistry()
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := startAll(ctx, m.components(), &m.started); err != nil {
		return err
	}
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

// Close is the one place keylens shuts down, after a signal, a listener's
// failure or a failed start: the ready file goes (even one left by an
// earlier run: keylens is no longer ready), then the components started
// close in reverse order (see components for what that guarantees). An
// admin client still sending after its budget is cut off and logged: that
// is not a failed shutdown.
func (m *Main) Close() error {
	if m.Config.ReadyFile != "" {
		_ = os.Remove(m.Config.ReadyFile) // no longer ready
	}
	err := closeAll(context.Background(), m.started)
	m.started = nil
	if m.logger != nil {
		if err != nil {
			m.logger.Error("shutdown", "err", err)
		}
		m.logger.Info("stopped")
	}
	return err
}

// backend is what the sidecar reads: a store, or a portal's admin API.
type backend interface {
	sidecar.Store
	sidecar.Feed
	keylens.TokenService
	keylens.HitWriter
	Ping(context.Context) error
}

var (
	_ backend = (*sqlstore.DB)(nil)
	_ backend = (*rest.Client)(nil)
)

// usageError is a configuration the world refuses (a gateway secret):
// exit code 2, as for a bad flag.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// publicHost is the host[:port] of --public-url ("" when unset).
func indent(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = "  - " + l
	}
	return strings.Join(lines, "\n")
}
