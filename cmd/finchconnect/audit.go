package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/finchconnect/finchconnect/audit"
)

// auditCmd lists the audit trail: every exchange, decryption, reveal,
// rotation and disconnect of a token, oldest first.
type auditCmd struct {
	sf          storeFlags
	conn, since string
	asJSON      bool
}

func (*auditCmd) spec() cmdSpec {
	return cmdSpec{name: "audit", env: sharedEnv, summary: "Show the trail of every use of a token, oldest first."}
}

func (a *auditCmd) flags(fs *flag.FlagSet) {
	a.sf.register(fs)
	fs.StringVar(&a.conn, "connection", "", "only this connection id")
	fs.StringVar(&a.since, "since", "", "only records after this: a duration back from now (24h) or an RFC 3339 time")
	fs.BoolVar(&a.asJSON, "json", false, "print JSON lines")
}

func (a *auditCmd) run(ctx context.Context, c *cli, _ []string) error {
	f := audit.Filter{ConnectionID: a.conn}
	if a.since != "" {
		if d, err := time.ParseDuration(a.since); err == nil {
			f.Since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, a.since); err == nil {
			f.Since = t
		} else {
			return fmt.Errorf("-since %q is neither a duration (24h) nor an RFC 3339 time (2026-01-02T15:04:05Z)", a.since)
		}
	}
	b, _, err := a.sf.open(ctx, mustExist)
	if err != nil {
		return err
	}
	defer b.Close()
	recs, err := audit.New(b).List(ctx, f)
	if err != nil {
		return fmt.Errorf("cannot read the audit trail: %s", plainError(err))
	}
	if a.asJSON {
		enc := json.NewEncoder(c.stdout)
		for _, r := range recs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tACTION\tCONNECTION\tACTOR\tPURPOSE\tREQUEST")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.At.UTC().Format(time.RFC3339), r.Action, r.ConnectionID, orDash(r.Actor), orDash(r.Purpose), orDash(r.RequestID))
	}
	return tw.Flush()
}
