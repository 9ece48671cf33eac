package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/finchconnect/finchconnect/tokenstore"
)

const migrateSynopsis = "finchconnect migrate -from URL -to URL"

// runMigrate copies every record from one store to another: sealed bytes as
// they are, so no key is needed. It verifies the copy and is safe to re-run.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	from := fs.String("from", "", "source store URL (sqlite:///…, redis://…, postgres://…)")
	to := fs.String("to", "", "destination store URL")
	if err := parseFlags(fs, args, getenv, stderr); err != nil {
		return handleParseError(err, fs, stdout, stderr, migrateSynopsis)
	}
	if *from == "" || *to == "" {
		return errors.New("migrate: -from and -to are both required")
	}
	src, err := openBackend(ctx, *from)
	if err != nil {
		return fmt.Errorf("migrate: open -from: %w", err)
	}
	defer src.Close()
	dst, err := openBackend(ctx, *to)
	if err != nil {
		return fmt.Errorf("migrate: open -to: %w", err)
	}
	defer dst.Close()

	bars := map[string]*progress{}
	res, err := tokenstore.Migrate(ctx, src, dst, tokenstore.MigrateOptions{
		Progress: func(p tokenstore.MigrateProgress) {
			bar, ok := bars[p.Phase]
			if !ok {
				bar = newProgress(stderr, p.Phase)
				bars[p.Phase] = bar
			}
			bar.update(p.Done, p.Total)
		},
	})
	for _, bar := range bars {
		bar.finish()
	}
	if err != nil {
		return fmt.Errorf("migrate %s → %s: %w", describeStore(*from), describeStore(*to), err)
	}
	fmt.Fprintf(stdout, "migrated %s → %s: %+v\n", describeStore(*from), describeStore(*to), res)
	return nil
}
