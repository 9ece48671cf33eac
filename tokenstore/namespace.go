package tokenstore

import (
	"context"
	"fmt"
	"strings"
)

// Namespace is a typed handle on one part of a backend's key space: the
// keys of one package's records (API keys, the audit trail, the outbox, the
// callback ledger, …). A package defines its namespace once, in that
// package, and makes every key through it, so no package types, or
// concatenates, another's prefix.
//
// A namespace's keys are its name, a slash, and an id: "apikey/" + id. The
// name holds no slash, so the keys of two namespaces never share a prefix
// ("state/" and "state-used/" cannot overlap), and a scan of one never
// returns the other's entries. The stored keys are plain strings, so a
// namespace costs nothing at run time and changes no stored format.
//
// The zero Namespace is not usable; make one with [NS].
type Namespace struct{ prefix string }

// NS returns the namespace called name. A name is lower-case ASCII letters,
// digits and '-', and not empty; NS panics on any other, because names are
// constants of the program, and the first test that touches the package
// finds a bad one.
func NS(name string) Namespace {
	if name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		panic(fmt.Sprintf("tokenstore: namespace name %q is not lower-case letters, digits and '-'", name))
	}
	return Namespace{prefix: name + "/"}
}

// Name returns the namespace's name, as given to [NS].
func (n Namespace) Name() string { return strings.TrimSuffix(n.prefix, "/") }

// Key returns the key of id in the namespace, for the key space's methods.
func (n Namespace) Key(id string) string { return n.prefix + id }

// ID returns the id of key within the namespace, and false if key is not
// one of the namespace's.
func (n Namespace) ID(key string) (string, bool) {
	if n.prefix == "" || !strings.HasPrefix(key, n.prefix) {
		return "", false
	}
	return key[len(n.prefix):], true
}

// Scanner is the key space's Scan, what [Namespace.Scan] calls.
type Scanner interface {
	Scan(ctx context.Context, prefix, after string, limit int) ([]Entry, error)
}

// Scan returns the namespace's unexpired entries, as s.Scan does: ordered by
// key, those whose key sorts after after (a key of the namespace, as a
// previous page's last Entry.Key, or "" for the first page), at most limit
// of them (0 means 100). Entry.Key is the whole key; [Namespace.ID] gives
// the id.
func (n Namespace) Scan(ctx context.Context, s Scanner, after string, limit int) ([]Entry, error) {
	if n.prefix == "" {
		return nil, fmt.Errorf("tokenstore: scan of the zero Namespace")
	}
	return s.Scan(ctx, n.prefix, after, limit)
}
