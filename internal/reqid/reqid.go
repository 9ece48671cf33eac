// Package reqid carries a request's id in its context, from the HTTP
// middleware that assigns it to the packages that log on the request's
// behalf (server, connect).
package reqid

import "context"

type key struct{}

// With returns ctx carrying the request id id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// From returns the request id in ctx, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}
