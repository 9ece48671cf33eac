package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/audit"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/tokenstore"
)

const defaultFinchBaseURL = "https://api.tryfinch.com"

// tokenDeleteCmd is `token delete`: disconnect a connection at Finch, then
// delete its token, as DELETE /v1/connections/{id} does. The token is the
// only way to disconnect, so it is deleted only once Finch has revoked it
// (or already refuses it). -forget deletes it without disconnecting, which
// leaves the connection live and billed at Finch with nobody able to
// revoke it: it takes the flag and a typed confirmation.
type tokenDeleteCmd struct {
	sf           storeFlags
	finchBaseURL string
	forget, yes  bool
}

func (*tokenDeleteCmd) spec() cmdSpec {
	return cmdSpec{name: "token delete", args: "CONNECTION_ID", env: sharedEnv,
		summary: "Disconnect a connection at Finch, then delete its token.",
		detail: `It asks you to type the connection id first (or takes -yes, for scripts); without a terminal
and without -yes it refuses. If Finch cannot be reached, nothing is deleted: try again.
-forget deletes the token without disconnecting: the connection then stays live, and billed, at
Finch, and only the employer can end it (in their HR system or Finch's dashboard).`}
}

func (t *tokenDeleteCmd) flags(fs *flag.FlagSet) {
	t.sf.register(fs)
	fs.StringVar(&t.finchBaseURL, "finch-base-url", defaultFinchBaseURL, "Finch API base URL, where the connection is disconnected")
	fs.BoolVar(&t.forget, "forget", false, "delete the token WITHOUT disconnecting at Finch (the connection stays live and billed, and can no longer be revoked from here)")
	fs.BoolVar(&t.yes, "yes", false, "do not ask for confirmation (for scripts)")
}

func (t *tokenDeleteCmd) run(ctx context.Context, c *cli, args []string) error {
	id := args[0]
	if err := checkHTTPURL("-finch-base-url", t.finchBaseURL); err != nil {
		return err
	}
	store, closeStore, err := t.sf.openVault(ctx, c.stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	if t.forget {
		return t.forgetToken(ctx, c, store, id)
	}
	if t.sf.keys == "" && t.sf.keysFile == "" && t.finchBaseURL == defaultFinchBaseURL {
		// The demo's tokens are the in-process sandbox's: Finch would
		// refuse them, which would count as disconnected.
		return fmt.Errorf("this is the demo's vault, whose Finch is the sandbox inside the running demo, not %s: "+
			"pass -finch-base-url with the demo's address plus /finch (http://127.0.0.1:3000/finch) while it runs", defaultFinchBaseURL)
	}
	conn, err := store.Get(ctx, id)
	if errors.Is(err, finchconnect.ErrDecrypt) {
		return fmt.Errorf("the token of connection %s does not open with the configured keys, so it cannot be disconnected at Finch and nothing was deleted: "+
			"fix the keys (`finchconnect keys status`), or add -forget to delete it without disconnecting", id)
	}
	if err != nil {
		return connectionError(id, err)
	}
	if err := c.confirm(fmt.Sprintf("disconnect connection %s (%s) at Finch and delete its token", id, describeConnection(conn)), id, t.yes); err != nil {
		return err
	}
	fc := &finch.Client{BaseURL: t.finchBaseURL, HTTPClient: &http.Client{Transport: finch.NewTransport(), CheckRedirect: finch.NoRedirects}}
	switch err := fc.Disconnect(ctx, conn.AccessToken); {
	case errors.Is(err, finchconnect.ErrUnauthorized):
		fmt.Fprintf(c.stderr, "Finch already refuses the token of %s: it counts as disconnected\n", id)
	case err != nil:
		//lint:ignore ST1005 the sentence starts with a name, Finch, and is shown to the operator as it is.
		return fmt.Errorf("Finch did not disconnect %s (%s), so its token is kept: try again, or check -finch-base-url (%s)", id, plainError(err), t.finchBaseURL)
	}
	if err := store.Delete(ctx, id); err != nil && !errors.Is(err, finchconnect.ErrNotFound) {
		//lint:ignore ST1005 the sentence starts with a name, Finch, and is shown to the operator as it is.
		return fmt.Errorf("Finch has disconnected %s, but deleting its token failed (%s): run the command again, which deletes it", id, plainError(err))
	}
	fmt.Fprintf(c.stdout, "disconnected %s at Finch and deleted its token\n", id)
	return recordDeletion(ctx, store, id, finchconnect.AuditDisconnected)
}

// forgetToken deletes connection id's token without disconnecting it.
func (t *tokenDeleteCmd) forgetToken(ctx context.Context, c *cli, store *tokenstore.Store, id string) error {
	conn, err := store.Lookup(ctx, id)
	if err != nil {
		return connectionError(id, err)
	}
	action := fmt.Sprintf("delete the token of connection %s (%s) WITHOUT disconnecting it: the connection stays live and billed at Finch, and nobody can revoke it from here", id, describeConnection(conn))
	if err := c.confirm(action, id, t.yes); err != nil {
		return err
	}
	if err := store.Delete(ctx, id); err != nil {
		return connectionError(id, err)
	}
	fmt.Fprintf(c.stdout, "deleted the token of %s without disconnecting it: the connection is still live at Finch\n", id)
	return recordDeletion(ctx, store, id, finchconnect.AuditDeleted)
}

func describeConnection(c finchconnect.Connection) string {
	return fmt.Sprintf("customer %s, provider %s, %s", orDash(c.CustomerID), orDash(c.ProviderID), c.Status)
}

// recordDeletion writes the audit record of a deletion that has happened.
// It cannot be undone, so a refused record fails the command (scripts
// notice) but says the deletion stands.
func recordDeletion(ctx context.Context, store *tokenstore.Store, id, action string) error {
	err := audit.New(store.Backend()).Record(ctx, finchconnect.AuditRecord{Action: action, ConnectionID: id, Actor: "operator"})
	if err != nil {
		return fmt.Errorf("%s is deleted, but the audit trail refused its record (%s): note the deletion elsewhere", id, plainError(err))
	}
	return nil
}
