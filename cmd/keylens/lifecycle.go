package main

import (
	"context"
	"errors"
	"sync"
	"time"
)

// component is one subsystem of keylens serve (or sidecar): a value built
// with its configuration and the components it needs, with nothing
// started; then Start; then Close. Close is called once Start was called,
// even when Start failed: it releases what Start got, and nothing when
// Start got nothing.
type component interface {
	Start(ctx context.Context) error
	Close(ctx context.Context) error
}

// startAll starts parts in order, recording each in *started before its
// Start; it stops at the first failure.
func startAll(ctx context.Context, parts []component, started *[]component) error {
	for _, p := range parts {
		*started = append(*started, p)
		if err := p.Start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// closeAll closes started in reverse and joins their errors.
func closeAll(ctx context.Context, started []component) error {
	var errs []error
	for i := len(started) - 1; i >= 0; i-- {
		errs = append(errs, started[i].Close(ctx))
	}
	return errors.Join(errs...)
}

// sequence starts its parts in order and closes the started ones in
// reverse, on one shutdown budget of its own.
type sequence struct {
	budget  time.Duration
	parts   []component
	started []component
}

// budget is a sequence of parts closed within d.
func budget(d time.Duration, parts ...component) *sequence {
	return &sequence{budget: d, parts: parts}
}

func (s *sequence) Start(ctx context.Context) error { return startAll(ctx, s.parts, &s.started) }

func (s *sequence) Close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.budget)
	defer cancel()
	return closeAll(ctx, s.started)
}

// parallel starts its parts in order and closes the started ones all at
// once (each on its own budget, when a sequence), returning when all are
// closed; their errors are joined in the order declared.
type parallel struct {
	parts   []component
	started []component
}

func together(parts ...component) *parallel { return &parallel{parts: parts} }

func (p *parallel) Start(ctx context.Context) error { return startAll(ctx, p.parts, &p.started) }

func (p *parallel) Close(ctx context.Context) error {
	errs := make([]error, len(p.started))
	var wg sync.WaitGroup
	for i, c := range p.started {
		wg.Go(func() { errs[i] = c.Close(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
