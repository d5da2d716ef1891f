package main

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

type probe struct {
	name     string
	log      *[]string
	startErr error
}

func (p *probe) Start(context.Context) error {
	*p.log = append(*p.log, "start "+p.name)
	return p.startErr
}
func (p *probe) Close(context.Context) error { *p.log = append(*p.log, "close "+p.name); return nil }

// TestLifecycle_StartFailureClosesInReverse: a failed start closes what was
// started (the failed one included), in reverse, and nothing after it.
func TestLifecycle_StartFailureClosesInReverse(t *testing.T) {
	var log []string
	p := func(name string, err error) *probe { return &probe{name: name, log: &log, startErr: err} }
	order := []component{p("store", nil), budget(time.Second, p("a", nil), p("b", errors.New("taken")), p("c", nil)), p("d", nil)}
	var started []component
	if err := startAll(context.Background(), order, &started); err == nil {
		t.Fatal("no error")
	}
	_ = closeAll(context.Background(), started)
	want := []string{"start store", "start a", "start b", "close b", "close a", "close store"}
	if !slices.Equal(log, want) {
		t.Errorf("%v, want %v", log, want)
	}
}
