package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/audit"
	"github.com/finchconnect/finchconnect/tokenstore"
)

var connectionStatuses = []string{
	finchconnect.StatusPending, finchconnect.StatusProcessing, finchconnect.StatusConnected,
	finchconnect.StatusErrorNoAccountSetup, finchconnect.StatusErrorPermissions,
	finchconnect.StatusReauth, finchconnect.StatusDisconnected,
}

// tokenListCmd is `token list`: the vault's connections, tokens redacted.
type tokenListCmd struct {
	sf                         storeFlags
	customer, provider, status string
	asJSON                     bool
}

func (*tokenListCmd) spec() cmdSpec {
	return cmdSpec{name: "token list", summary: "List the vault's connections, tokens redacted.", env: sharedEnv}
}

func (t *tokenListCmd) flags(fs *flag.FlagSet) {
	t.sf.register(fs)
	fs.StringVar(&t.customer, "customer", "", "only this customer id")
	fs.StringVar(&t.provider, "provider", "", "only this provider id")
	enumVar(fs, &t.status, "status", "", connectionStatuses, "only this status")
	fs.BoolVar(&t.asJSON, "json", false, "print JSON")
}

func (t *tokenListCmd) run(ctx context.Context, c *cli, _ []string) error {
	store, closeStore, err := t.sf.openVault(ctx, c.stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	return listTokens(ctx, store, tokenstore.Filter{CustomerID: t.customer, ProviderID: t.provider, Status: t.status}, t.asJSON, c.stdout)
}

// tokenGetCmd is `token get`: one connection's metadata, or with -reveal
// its live token.
type tokenGetCmd struct {
	sf             storeFlags
	asJSON, reveal bool
}

func (*tokenGetCmd) spec() cmdSpec {
	return cmdSpec{name: "token get", args: "CONNECTION_ID", env: sharedEnv,
		summary: "Show one connection, token redacted; -reveal prints the token itself.",
		detail: "-reveal prints the live access token on stdout, with a warning on stderr, and records it in the\n" +
			"audit trail; it is read from the command line only, never from the environment."}
}

func (t *tokenGetCmd) flags(fs *flag.FlagSet) {
	t.sf.register(fs)
	fs.BoolVar(&t.asJSON, "json", false, "print JSON")
	fs.BoolVar(&t.reveal, "reveal", false, "print the access token itself (for operators; it is a live credential)")
}

func (t *tokenGetCmd) run(ctx context.Context, c *cli, args []string) error {
	id := args[0]
	store, closeStore, err := t.sf.openVault(ctx, c.stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	if !t.reveal {
		conn, err := store.Lookup(ctx, id)
		if err != nil {
			return connectionError(id, err)
		}
		return printConnection(conn, t.asJSON, c.stdout)
	}
	conn, err := store.Get(ctx, id)
	if err != nil {
		return connectionError(id, err)
	}
	if err := audit.New(store.Backend()).Record(ctx, finchconnect.AuditRecord{Action: finchconnect.AuditRevealed, ConnectionID: id, Actor: "operator"}); err != nil {
		return fmt.Errorf("the audit trail refused the record of this reveal (%s), so the token of %s is not shown: check the store, then try again", plainError(err), id)
	}
	fmt.Fprintln(c.stderr, "WARNING: printing a live Finch access token. It grants access to this employer's data until the connection is disconnected.")
	fmt.Fprintln(c.stdout, conn.AccessToken.Reveal())
	return nil
}

// connectionError says, in one sentence with what to do, why connection
// id could not be read.
func connectionError(id string, err error) error {
	switch {
	case errors.Is(err, finchconnect.ErrNotFound):
		return fmt.Errorf("no connection %q in the store: `finchconnect token list` lists the connection ids", id)
	case errors.Is(err, finchconnect.ErrDecrypt):
		return fmt.Errorf("the token of connection %s does not open with the configured keys: run `finchconnect keys status` to see which key it needs", id)
	}
	return fmt.Errorf("cannot read connection %s: %s", id, plainError(err))
}

func listTokens(ctx context.Context, store *tokenstore.Store, f tokenstore.Filter, asJSON bool, w io.Writer) error {
	all := []finchconnect.Connection{} // -json of no connections is [], not null
	for {
		page, next, err := store.List(ctx, f)
		if err != nil {
			return fmt.Errorf("cannot list the connections: %s", plainError(err))
		}
		all = append(all, page...)
		if next == "" {
			break
		}
		f.After = next
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(all)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONNECTION ID\tCUSTOMER\tPROVIDER\tSTATUS\tCONNECTED\tTOKEN")
	for _, c := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ConnectionID, orDash(c.CustomerID), orDash(c.ProviderID), c.Status,
			c.CreatedAt.UTC().Format("2006-01-02 15:04"), "[redacted]")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d connection(s)\n", len(all))
	return nil
}

func printConnection(c finchconnect.Connection, asJSON bool, w io.Writer) error {
	c.AccessToken = finchconnect.NewSecret("sealed") // shown as [redacted]: the record has a token, but it is not printed
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(c)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("connection_id", c.ConnectionID)
	row("customer_id", orDash(c.CustomerID))
	row("customer_name", orDash(c.CustomerName))
	row("provider_id", orDash(c.ProviderID))
	row("status", c.Status)
	row("products", strings.Join(c.Products, ","))
	row("entity_ids", strings.Join(c.EntityIDs, ","))
	row("connection_type", orDash(c.ConnectionType))
	row("client_type", orDash(c.ClientType))
	row("created_at", c.CreatedAt.UTC().Format("2006-01-02T15:04:05Z"))
	row("updated_at", c.UpdatedAt.UTC().Format("2006-01-02T15:04:05Z"))
	row("access_token", c.AccessToken.String())
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
