package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/finchconnect/finchconnect/apikey"
)

const apikeySynopsis = `finchconnect apikey create -scope read|write [-name NAME] [store flags]
       finchconnect apikey list [store flags]
       finchconnect apikey revoke [store flags] ID`

// runAPIKey manages the keys of the /v1 API. create prints the key once, on
// stdout; only its hash is stored.
func runAPIKey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "Usage: %s\n", apikeySynopsis)
		return errUsage
	}
	sub, args := args[0], args[1:]
	var sf storeFlags
	var scope, name string
	fs := flag.NewFlagSet("apikey "+sub, flag.ContinueOnError)
	sf.register(fs)
	switch sub {
	case "create":
		fs.StringVar(&scope, "scope", "read", "read (GET routes, reads through the proxy) or write (everything)")
		fs.StringVar(&name, "name", "", "what the key is for, shown by apikey list")
	case "list", "revoke":
	default:
		fmt.Fprintf(stderr, "finchconnect: unknown apikey command %q\nUsage: %s\n", sub, apikeySynopsis)
		return errUsage
	}
	pos, flagArgs := splitPositional(args)
	if err := parseFlags(fs, flagArgs, getenv, stderr); err != nil {
		return handleParseError(err, fs, stdout, stderr, apikeySynopsis)
	}
	if sub == "revoke" && len(pos) != 1 {
		fmt.Fprintf(stderr, "finchconnect: apikey revoke takes one key id (got %q)\nUsage: %s\n", pos, apikeySynopsis)
		return errUsage
	}
	if sub != "revoke" && len(pos) > 0 {
		fmt.Fprintf(stderr, "finchconnect: apikey %s takes no argument (got %q)\nUsage: %s\n", sub, pos[0], apikeySynopsis)
		return errUsage
	}
	id := ""
	if len(pos) == 1 {
		id = pos[0]
	}
	b, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	switch sub {
	case "create":
		key, rec, err := apikey.Create(ctx, b, name, scope)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "created %s key %s; it is shown once — store it in your app's secrets now\n", rec.Scope, rec.ID)
		fmt.Fprintln(stdout, key.Reveal())
	case "list":
		recs, err := apikey.List(ctx, b)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSCOPE\tNAME\tCREATED\tREVOKED")
		for _, r := range recs {
			revoked := "-"
			if !r.RevokedAt.IsZero() {
				revoked = r.RevokedAt.Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Scope, orDash(r.Name), r.CreatedAt.Format("2006-01-02 15:04"), revoked)
		}
		return tw.Flush()
	case "revoke":
		if err := apikey.Revoke(ctx, b, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s\n", id)
	}
	return nil
}
