package connect

import (
	"context"

	"github.com/finchconnect/finchconnect/tokenstore"
)

// The storage primitives shaped for this package's callers, each called
// from here only, so that a change of the storage contract is a change of
// this file. The vault writes that settle a ledger entry in the same write
// (tokenstore.Store's CreateSwap, PutSwap, ReplaceSwap) go through the
// Store, which owns the row format.

// claimGuarded writes every claim of cs if none is held and the key guard
// exists, in one atomic step ([tokenstore.ClaimAllIf], one transaction): it returns
// guard's value, and on a conflict the index of the first claim held.
func (s *Service) claimGuarded(ctx context.Context, guard string, cs []tokenstore.Claim) (value []byte, held int, err error) {
	return tokenstore.ClaimAllIf(ctx, s.backend, guard, cs)
}
