package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/finchconnect/finchconnect/audit"
)

const auditSynopsis = "finchconnect audit [-connection ID] [-since DURATION|RFC3339] [-json] [store flags]"

// runAudit lists the audit trail: every exchange, decryption, reveal,
// rotation and disconnect of a token, oldest first.
func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var sf storeFlags
	var conn, since string
	var asJSON bool
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	sf.register(fs)
	fs.StringVar(&conn, "connection", "", "only this connection id")
	fs.StringVar(&since, "since", "", "only records after this: a duration back from now (24h) or an RFC 3339 time")
	fs.BoolVar(&asJSON, "json", false, "print JSON lines")
	if err := parseFlags(fs, args, getenv, stderr); err != nil {
		return handleParseError(err, fs, stdout, stderr, auditSynopsis)
	}
	f := audit.Filter{ConnectionID: conn}
	if since != "" {
		if d, err := time.ParseDuration(since); err == nil {
			f.Since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, since); err == nil {
			f.Since = t
		} else {
			return fmt.Errorf("audit: -since %q is neither a duration nor an RFC 3339 time", since)
		}
	}
	b, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	recs, err := audit.New(b).List(ctx, f)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		for _, r := range recs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tACTION\tCONNECTION\tACTOR\tPURPOSE\tREQUEST")
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.At.UTC().Format(time.RFC3339), r.Action, r.ConnectionID, orDash(r.Actor), orDash(r.Purpose), orDash(r.RequestID))
	}
	return tw.Flush()
}
