package server

import (
	"context"
	"errors"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// SweepOptions bound a health sweep.
type SweepOptions struct {
	// PerMinute is the request budget: at most this many /introspect calls
	// a minute, so sweeps never eat the app's Finch rate limits. Default 10.
	PerMinute float64
	// Progress, when set, is called after each connection.
	Progress func(checked, changed int)
}

// SweepResult says what a sweep found.
type SweepResult struct {
	Checked int // connections introspected
	Changed int // connections whose status changed
	Failed  int // introspections that failed for other reasons
}

// Sweep introspects every stored connection, within the request budget,
// and records what Finch says: status, last sync, when it was checked. A
// connection that needs re-authentication is marked, and the app told,
// before the app's next data call meets a 401. It stops when ctx is done.
func (s *Server) Sweep(ctx context.Context, opts SweepOptions) (SweepResult, error) {
	var res SweepResult
	perMinute := opts.PerMinute
	if perMinute <= 0 {
		perMinute = 10
	}
	gap := time.Duration(float64(time.Minute) / perMinute)
	next := s.clock.Now()
	after := ""
	for {
		page, cursor, err := s.store.List(ctx, tokenstore.Filter{After: after, Limit: 100})
		if err != nil {
			return res, err
		}
		for _, meta := range page {
			if meta.Status == finchconnect.StatusDisconnected {
				continue
			}
			if wait := next.Sub(s.clock.Now()); wait > 0 {
				select {
				case <-s.clock.After(wait):
				case <-ctx.Done():
					return res, ctx.Err()
				}
			}
			next = s.clock.Now().Add(gap)
			changed, err := s.check(ctx, meta.ConnectionID)
			switch {
			case err != nil:
				res.Failed++
				s.log.Warn("sweep: check a connection", "connection_id", meta.ConnectionID, "err", err)
			default:
				res.Checked++
				if changed {
					res.Changed++
				}
			}
			if opts.Progress != nil {
				opts.Progress(res.Checked, res.Changed)
			}
		}
		if cursor == "" {
			return res, nil
		}
		after = cursor
	}
}

// check introspects one connection and records the answer; it reports
// whether the status changed.
func (s *Server) check(ctx context.Context, id string) (bool, error) {
	conn, err := s.store.Get(ctx, id)
	if err != nil {
		return false, err
	}
	s.audit(ctx, finchconnect.AuditDecrypted, id, "sweep", "GET /introspect")
	in, err := s.finch.Introspect(background(ctx, id), conn.AccessToken)
	status := ""
	switch {
	case errors.Is(err, finchconnect.ErrReauthRequired):
		status = finchconnect.StatusReauth
	case errors.Is(err, finchconnect.ErrUnauthorized):
		status = finchconnect.StatusDisconnected
	case err != nil:
		return false, err
	}
	return s.changeStatus(ctx, id, conn, func(c *finchconnect.Connection) {
		if in != nil {
			applyIntrospection(c, in, s.clock.Now())
		} else {
			c.Status, c.CheckedAt = status, s.clock.Now()
		}
	})
}
