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

const tokenSynopsis = `finchconnect token list [-customer ID] [-provider ID] [-status S] [-json] [store flags]
       finchconnect token get [-reveal] [-json] [store flags] CONNECTION_ID
       finchconnect token delete [store flags] CONNECTION_ID`

// runToken is the operator's view of the vault. list and get print metadata
// with the token redacted; only `get -reveal` prints a token, with a warning
// on stderr, for an operator who must hand it to another tool.
func runToken(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "Usage: %s\n", tokenSynopsis)
		return errUsage
	}
	sub, args := args[0], args[1:]
	var (
		sf                         storeFlags
		customer, provider, status string
		asJSON, reveal             bool
	)
	fs := flag.NewFlagSet("token "+sub, flag.ContinueOnError)
	sf.register(fs)
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	switch sub {
	case "list":
		fs.StringVar(&customer, "customer", "", "only this customer id")
		fs.StringVar(&provider, "provider", "", "only this provider id")
		fs.StringVar(&status, "status", "", "only this status (connected, reauth, …)")
	case "get":
		fs.BoolVar(&reveal, "reveal", false, "print the access token itself (for operators; it is a live credential)")
	case "delete":
	default:
		fmt.Fprintf(stderr, "finchconnect: unknown token command %q\nUsage: %s\n", sub, tokenSynopsis)
		return errUsage
	}
	pos, flagArgs := splitPositional(args)
	if err := parseFlags(fs, flagArgs, getenv, stderr); err != nil {
		return handleParseError(err, fs, stdout, stderr, tokenSynopsis)
	}
	switch {
	case sub == "list" && len(pos) > 0:
		fmt.Fprintf(stderr, "finchconnect: token list takes no argument (got %q); filter with -customer, -provider or -status\nUsage: %s\n", pos[0], tokenSynopsis)
		return errUsage
	case sub != "list" && len(pos) == 0:
		fmt.Fprintf(stderr, "finchconnect: token %s needs a connection id\nUsage: %s\n", sub, tokenSynopsis)
		return errUsage
	case sub != "list" && len(pos) > 1:
		fmt.Fprintf(stderr, "finchconnect: token %s takes one connection id (got %q)\nUsage: %s\n", sub, pos, tokenSynopsis)
		return errUsage
	}
	id := ""
	if len(pos) == 1 {
		id = pos[0]
	}
	store, closeStore, err := sf.openVault(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeStore()

	switch sub {
	case "list":
		return listTokens(ctx, store, tokenstore.Filter{CustomerID: customer, ProviderID: provider, Status: status}, asJSON, stdout)
	case "get":
		var conn finchconnect.Connection
		if reveal {
			conn, err = store.Get(ctx, id)
		} else {
			conn, err = store.Lookup(ctx, id)
		}
		if err != nil {
			return fmt.Errorf("token get %s: %w", id, err)
		}
		if reveal {
			if err := audit.New(store.Backend()).Record(ctx, finchconnect.AuditRecord{Action: finchconnect.AuditRevealed, ConnectionID: id, Actor: "operator"}); err != nil {
				return fmt.Errorf("token get %s: the audit trail refused the record, so the token is not shown: %w", id, err)
			}
			fmt.Fprintln(stderr, "WARNING: printing a live Finch access token. It grants access to this employer's data until the connection is disconnected.")
			fmt.Fprintln(stdout, conn.AccessToken.Reveal())
			return nil
		}
		return printConnection(conn, asJSON, stdout)
	case "delete":
		if err := store.Delete(ctx, id); err != nil {
			if errors.Is(err, finchconnect.ErrNotFound) {
				return fmt.Errorf("token delete %s: no such connection", id)
			}
			return fmt.Errorf("token delete %s: %w", id, err)
		}
		fmt.Fprintf(stdout, "deleted %s (the connection is still live at Finch until disconnected)\n", id)
		if err := audit.New(store.Backend()).Record(ctx, finchconnect.AuditRecord{Action: finchconnect.AuditDeleted, ConnectionID: id, Actor: "operator"}); err != nil {
			// The delete cannot be undone; say that the trail lacks it, and
			// fail, so that scripts notice.
			return fmt.Errorf("token delete %s: the connection is deleted, but the audit trail refused its record: %w", id, err)
		}
	}
	return nil
}

// splitPositional separates positional arguments (a connection id) from
// flags, wherever they stand, so `token get ID -reveal` and
// `token get -reveal ID` both work. Everything after "--" is positional.
// The caller checks how many positional arguments it got.
func splitPositional(args []string) (pos, flags []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(pos, args[i+1:]...), flags
		case strings.HasPrefix(a, "-") && a != "-":
			flags = append(flags, a)
			// A flag given as "-name value" takes the next argument, unless
			// it is boolean or written "-name=value".
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && !boolFlags[name] && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			pos = append(pos, a)
		}
	}
	return pos, flags
}

var boolFlags = map[string]bool{"json": true, "reveal": true, "h": true, "help": true}

func listTokens(ctx context.Context, store *tokenstore.Store, f tokenstore.Filter, asJSON bool, w io.Writer) error {
	var all []finchconnect.Connection
	for {
		page, next, err := store.List(ctx, f)
		if err != nil {
			return fmt.Errorf("token list: %w", err)
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
