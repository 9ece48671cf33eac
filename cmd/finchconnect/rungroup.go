package main

import (
	"context"
	"errors"
	"fmt"
)

// runGroup runs a process's long-lived parts together and owns their
// shutdown order. Each actor runs until its context is cancelled; when ctx
// is done or any actor returns, the group stops every actor, one at a
// time, in the reverse order they were added: first its stop function (if
// any, and it may block, as an HTTP server's graceful shutdown does), then
// its context is cancelled and the group waits for it to return. So what
// was added last (the server taking requests) stops first, and what it
// uses stops after it.
type runGroup struct{ actors []*actor }

type actor struct {
	name   string
	run    func(context.Context) error
	stop   func() error
	cancel context.CancelFunc
	done   chan error
}

// add registers an actor; stop may be nil.
func (g *runGroup) add(name string, run func(context.Context) error, stop func() error) {
	g.actors = append(g.actors, &actor{name: name, run: run, stop: stop})
}

// run starts every actor, waits for ctx or the first actor to return, and
// stops them all. It returns the first actor's failure, or else the first
// failure to stop.
func (g *runGroup) run(ctx context.Context) error {
	exited := make(chan error, len(g.actors))
	for _, a := range g.actors {
		actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		a.cancel, a.done = cancel, make(chan error, 1)
		go func() {
			err := a.run(actx)
			if err != nil {
				err = fmt.Errorf("%s: %w", a.name, err)
			} else if actx.Err() == nil {
				err = errActorExited{a.name}
			}
			a.done <- err
			exited <- err
		}()
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-exited:
	}
	for i := len(g.actors) - 1; i >= 0; i-- {
		a := g.actors[i]
		if a.stop != nil {
			if err := a.stop(); err != nil && first == nil {
				first = err
			}
		}
		a.cancel()
		if err := <-a.done; err != nil && first == nil && !errors.As(err, new(errActorExited)) {
			first = err
		}
	}
	if errors.As(first, new(errActorExited)) && ctx.Err() != nil {
		return nil
	}
	return first
}

// errActorExited is an actor that returned nil before it was stopped.
type errActorExited struct{ name string }

func (e errActorExited) Error() string { return e.name + " stopped unexpectedly" }
