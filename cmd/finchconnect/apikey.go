package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/apikey"
)

// The apikey commands manage the keys of the /v1 API. create prints the
// key once, on stdout; only its hash is stored.

type apikeyCreateCmd struct {
	sf          storeFlags
	scope, name string
	personal    bool
}

func (*apikeyCreateCmd) spec() cmdSpec {
	return cmdSpec{name: "apikey create", env: sharedEnv,
		summary: "Create a /v1 API key and print it, once, on stdout."}
}

func (a *apikeyCreateCmd) flags(fs *flag.FlagSet) {
	a.sf.register(fs)
	enumVar(fs, &a.scope, "scope", apikey.ScopeRead, apikey.Scopes,
		"read: GET routes and reads through the proxy; write: everything but /forward; forward: everything")
	fs.StringVar(&a.name, "name", "", "what the key is for, shown by apikey list")
	fs.BoolVar(&a.personal, "personal", false, "let the key read employees' personal fields (SSNs, dates of birth, pay, bank accounts) in /v1's synced records; every such read is audited")
}

func (a *apikeyCreateCmd) run(ctx context.Context, c *cli, _ []string) error {
	b, _, err := a.sf.open(ctx, mustExist)
	if err != nil {
		return err
	}
	defer b.Close()
	var opts []apikey.Option
	if a.personal {
		opts = append(opts, apikey.Personal())
	}
	key, rec, err := apikey.Create(ctx, b, a.name, a.scope, opts...)
	if err != nil {
		return fmt.Errorf("cannot create the API key: %s", plainError(err))
	}
	kind := rec.Scope
	if rec.Personal {
		kind += ", personal"
	}
	fmt.Fprintf(c.stderr, "created %s key %s; it is shown once — store it in your app's secrets now\n", kind, rec.ID)
	fmt.Fprintln(c.stdout, key.Reveal())
	return nil
}

type apikeyListCmd struct{ sf storeFlags }

func (*apikeyListCmd) spec() cmdSpec {
	return cmdSpec{name: "apikey list", env: sharedEnv, summary: "List the /v1 API keys (never the keys themselves)."}
}

func (a *apikeyListCmd) flags(fs *flag.FlagSet) { a.sf.register(fs) }

func (a *apikeyListCmd) run(ctx context.Context, c *cli, _ []string) error {
	b, _, err := a.sf.open(ctx, mustExist)
	if err != nil {
		return err
	}
	defer b.Close()
	recs, err := apikey.List(ctx, b)
	if err != nil {
		return fmt.Errorf("cannot list the API keys: %s", plainError(err))
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSCOPE\tNAME\tCREATED\tREVOKED")
	for _, r := range recs {
		revoked := "-"
		if !r.RevokedAt.IsZero() {
			revoked = r.RevokedAt.Format("2006-01-02 15:04")
		}
		scope := r.Scope
		if r.Personal {
			scope += "+personal" // it may read employees' personal fields
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, scope, orDash(r.Name), r.CreatedAt.Format("2006-01-02 15:04"), revoked)
	}
	return tw.Flush()
}

type apikeyRevokeCmd struct{ sf storeFlags }

func (*apikeyRevokeCmd) spec() cmdSpec {
	return cmdSpec{name: "apikey revoke", args: "ID", env: sharedEnv,
		summary: "Revoke a /v1 API key: requests with it are refused from then on."}
}

func (a *apikeyRevokeCmd) flags(fs *flag.FlagSet) { a.sf.register(fs) }

func (a *apikeyRevokeCmd) run(ctx context.Context, c *cli, args []string) error {
	b, _, err := a.sf.open(ctx, mustExist)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := apikey.Revoke(ctx, b, args[0]); err != nil {
		if errors.Is(err, finchconnect.ErrNotFound) {
			return fmt.Errorf("no API key %q: `finchconnect apikey list` lists them", args[0])
		}
		return fmt.Errorf("cannot revoke API key %s: %s", args[0], plainError(err))
	}
	fmt.Fprintf(c.stdout, "revoked %s\n", args[0])
	return nil
}
