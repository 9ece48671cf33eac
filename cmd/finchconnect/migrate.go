package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/finchconnect/finchconnect/tokenstore"
)

// migrateCmd copies every record from one store to another: sealed bytes
// as they are, so no key is needed. It verifies the copy and is safe to
// re-run. The source must exist; the destination is created if it is a
// SQLite file that does not exist yet.
type migrateCmd struct {
	from, to    string
	asJSON, yes bool
}

func (*migrateCmd) spec() cmdSpec {
	return cmdSpec{name: "migrate", summary: "Copy every record from one store to another, and verify the copy.",
		detail: "Sealed tokens are copied as they are, so no key is needed. It is safe to run again. -from must\n" +
			"exist; -to is created if it is a SQLite file that does not exist yet (in a folder that does).\n" +
			"Into a destination that already holds connections it asks first (or takes -yes): where a\n" +
			"connection differs, the source's replaces it, so a token a server stored there would be lost."}
}

func (m *migrateCmd) flags(fs *flag.FlagSet) {
	fs.StringVar(&m.from, "from", "", "source store URL: sqlite:///…, redis://…, postgres://… (required)")
	fs.StringVar(&m.to, "to", "", "destination store URL (required)")
	fs.BoolVar(&m.asJSON, "json", false, "print the summary as JSON")
	fs.BoolVar(&m.yes, "yes", false, "copy into a destination that already holds connections without asking (a second pass, in a script)")
}

func (m *migrateCmd) run(ctx context.Context, c *cli, _ []string) error {
	if m.from == "" || m.to == "" {
		return errors.New("-from and -to are both required: finchconnect migrate -from sqlite:///old.db -to postgres://…")
	}
	src, _, err := openBackend(ctx, m.from, mustExist, "")
	if err != nil {
		return fmt.Errorf("-from: %w", err)
	}
	defer src.Close()
	dst, _, err := openBackend(ctx, m.to, mayCreate, "")
	if err != nil {
		return fmt.Errorf("-to: %w", err)
	}
	defer dst.Close()
	if err := m.confirmOverwrite(ctx, c, dst); err != nil {
		return err
	}

	bars := map[string]*progress{}
	var last *progress
	res, err := tokenstore.Migrate(ctx, src, dst, tokenstore.MigrateOptions{
		Progress: func(p tokenstore.MigrateProgress) {
			bar, ok := bars[p.Phase]
			if !ok {
				if last != nil {
					last.finish()
				}
				bar = newProgress(c.stderr, p.Phase)
				bars[p.Phase], last = bar, bar
			}
			bar.update(p.Done, p.Total)
		},
	})
	if last != nil {
		last.finish()
	}
	if err != nil {
		return fmt.Errorf("the copy from %s to %s stopped (%s); run the same command again: it copies what is missing", describeStore(m.from), describeStore(m.to), plainError(err))
	}
	if !m.asJSON {
		fmt.Fprintf(c.stdout, "migrated %s → %s\n", describeStore(m.from), describeStore(m.to))
	}
	return printSummary(c.stdout, m.asJSON, newMigrateSummary(m.from, m.to, res))
}

type migrateSummary struct {
	From               string `json:"from"`
	To                 string `json:"to"`
	Connections        int    `json:"connections"`
	ConnectionsCopied  int    `json:"connections_copied"`
	ConnectionsChecked int    `json:"connections_verified"`
	Entries            int    `json:"entries"`
	EntriesCopied      int    `json:"entries_copied"`
	EntriesOverwritten int    `json:"entries_overwritten"`
	EntriesChecked     int    `json:"entries_verified"`
}

func newMigrateSummary(from, to string, r tokenstore.MigrateResult) migrateSummary {
	return migrateSummary{From: describeStore(from), To: describeStore(to),
		Connections: r.Rows, ConnectionsCopied: r.RowsCopied, ConnectionsChecked: r.Verified,
		Entries: r.Entries, EntriesCopied: r.EntriesCopied, EntriesOverwritten: r.EntriesOverwritten, EntriesChecked: r.EntriesVerified}
}

func (s migrateSummary) rows() [][2]string {
	copied := s.EntriesCopied + s.EntriesOverwritten
	return [][2]string{
		{"", "IN SOURCE\tCOPIED\tALREADY THERE\tVERIFIED"},
		{"connections", fmt.Sprintf("%d\t%d\t%d\t%d", s.Connections, s.ConnectionsCopied, s.Connections-s.ConnectionsCopied, s.ConnectionsChecked)},
		{"entries", fmt.Sprintf("%d\t%d\t%d\t%d", s.Entries, copied, s.Entries-copied, s.EntriesChecked)},
	}
}

// confirmOverwrite asks before copying into a destination that already
// holds connections: the source wins wherever the two differ, so a token a
// server stored in the destination (a store already in use) would be
// replaced by the source's older one. A second pass of a move, while no
// server uses the destination yet, is the expected case: -yes says so.
func (m *migrateCmd) confirmOverwrite(ctx context.Context, c *cli, dst tokenstore.Backend) error {
	rows, err := dst.ListRows(ctx, tokenstore.Filter{Limit: 1})
	if err != nil {
		return fmt.Errorf("-to: %s could not be read (%s)", describeStore(m.to), plainError(err))
	}
	if len(rows) == 0 {
		return nil
	}
	return c.confirm(fmt.Sprintf("copy into %s, which already holds connections: where one differs from the source's, the source's replaces it", describeStore(m.to)), "overwrite", m.yes)
}
