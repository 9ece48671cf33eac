package tokenstore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/tokenstore"
)

func Example() {
	ctx := context.Background()
	key, _ := keyring.Generate(1)
	kr, _ := keyring.New(key)
	store := tokenstore.New(tokenstore.NewMemory(), kr)

	_ = store.Put(ctx, finchconnect.Connection{
		ConnectionID: "conn-1", ProviderID: "gusto", Status: finchconnect.StatusConnected,
		AccessToken: finchconnect.NewSecret("token-from-finch"),
	})
	// A status change: the sealed token is not touched.
	_ = store.Update(ctx, "conn-1", func(c *finchconnect.Connection) error {
		c.Status = finchconnect.StatusReauth
		return nil
	})
	c, _ := store.Get(ctx, "conn-1")
	fmt.Println(c.Status, c.AccessToken, c.AccessToken.Reveal())

	_, err := store.Get(ctx, "conn-2")
	fmt.Println(errors.Is(err, finchconnect.ErrNotFound))
	// Output:
	// reauth [redacted] token-from-finch
	// true
}

func ExampleStore_Rewrap() {
	ctx := context.Background()
	backend := tokenstore.NewMemory()
	k1, _ := keyring.Generate(1)
	old, _ := keyring.New(k1)
	_ = tokenstore.New(backend, old).Put(ctx, finchconnect.Connection{ConnectionID: "conn-1", AccessToken: finchconnect.NewSecret("t")})

	// Rotate: the new key first, the old one kept for reading.
	k2, _ := keyring.Generate(2)
	kr, _ := keyring.New(k2, k1)
	store := tokenstore.New(backend, kr)
	res, _ := store.Rewrap(ctx, tokenstore.RewrapOptions{})
	usage, _ := store.KeyUsage(ctx)
	fmt.Println(res.Rewrapped, usage)
	// Output: 1 map[2:1]
}
