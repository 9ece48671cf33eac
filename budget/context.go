package budget

import "context"

// A Lane is a call's priority: waiting Interactive calls are always served
// before waiting Background ones.
type Lane int

const (
	// Interactive is for calls a person or an app's request waits for:
	// pages and the /v1 proxy. It is the lane of a context without one.
	Interactive Lane = iota
	// Background is for work nobody waits on: health sweeps,
	// re-authentication checks, syncs.
	Background
	numLanes
)

// String is the lane's metric label: "interactive" or "background".
func (l Lane) String() string {
	if l == Background {
		return "background"
	}
	return "interactive"
}

type laneKey struct{}
type connKey struct{}

// WithLane returns ctx marked with lane.
func WithLane(ctx context.Context, lane Lane) context.Context {
	if lane != Background {
		lane = Interactive
	}
	return context.WithValue(ctx, laneKey{}, lane)
}

// LaneOf is the lane ctx is marked with, Interactive by default.
func LaneOf(ctx context.Context) Lane {
	if l, ok := ctx.Value(laneKey{}).(Lane); ok {
		return l
	}
	return Interactive
}

// WithConnection returns ctx marked as working for connection id: within
// a lane, waiting calls are served round robin between connections, so
// that one connection's long sync cannot starve another's calls. Calls
// without a connection share one queue of their own.
func WithConnection(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, connKey{}, id)
}

// ConnectionOf is the connection ctx is marked with, or "".
func ConnectionOf(ctx context.Context) string {
	id, _ := ctx.Value(connKey{}).(string)
	return id
}
