package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/audit"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/tokenstore"
)

const keysSynopsis = `finchconnect keys status [store flags]
       finchconnect keys rotate [-rate N] [-reload-wait D] [-rewrap-only] [store flags]
       finchconnect keys retire -id N [store flags]`

// runKeys shows and rotates the vault's encryption keys.
//
// rotate works while servers run, in three steps that keep every server
// able to open every record: it adds a new key to the key file as a
// read-only key and waits -reload-wait for the servers to re-read the file
// (they do every -keys-reload); then it makes the new key the primary and
// waits again; then it re-seals every record under it, resumably and at
// -rate records per second. With -rewrap-only it does the last step alone
// (to resume, or after keys were changed by hand). retire removes a key from
// the key file, and refuses while any record, or the journal, still uses it.
func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "Usage: %s\n", keysSynopsis)
		return errUsage
	}
	sub, args := args[0], args[1:]
	var (
		sf         storeFlags
		rate       float64
		rewrapOnly bool
		retireID   uint
		reloadWait time.Duration
	)
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	sf.register(fs)
	switch sub {
	case "status":
	case "rotate":
		fs.Float64Var(&rate, "rate", 0, "records re-sealed per second at most (0: as fast as the store allows)")
		fs.BoolVar(&rewrapOnly, "rewrap-only", false, "do not add a key; re-seal records under the current primary (resume an interrupted rotation)")
		fs.DurationVar(&reloadWait, "reload-wait", 25*time.Second, "how long servers need to re-read the key file (their -keys-reload, plus margin); 0 when no server runs")
	case "retire":
		fs.UintVar(&retireID, "id", 0, "the key id to remove")
	default:
		fmt.Fprintf(stderr, "finchconnect: unknown keys command %q\nUsage: %s\n", sub, keysSynopsis)
		return errUsage
	}
	if err := parseFlags(fs, args, getenv); err != nil {
		return handleParseError(err, fs, stdout, stderr, keysSynopsis)
	}

	switch sub {
	case "rotate":
		if !rewrapOnly {
			path, err := sf.writableKeyFile()
			if err != nil {
				return err
			}
			id, err := addKey(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "added key %d to %s as a read-only key; waiting %s for servers to load it\n", id, path, reloadWait)
			if err := sleepCtx(ctx, reloadWait); err != nil {
				return err
			}
			if err := promoteKey(path, id); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "made key %d the primary; waiting %s for servers to seal with it\n", id, reloadWait)
			if err := sleepCtx(ctx, reloadWait); err != nil {
				return err
			}
		}
	case "retire":
		if retireID == 0 {
			return errors.New("keys retire: -id is required")
		}
	}

	store, closeStore, err := sf.openVault(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	kr := store.Keyring()

	switch sub {
	case "status":
		return keyStatus(ctx, store, kr, stdout)
	case "rotate":
		bar := newProgress(stderr, "re-sealing")
		res, err := store.Rewrap(ctx, tokenstore.RewrapOptions{
			Rate:     rate,
			Progress: func(done, total int, _ string) { bar.update(done, total) },
		})
		bar.finish()
		if err != nil {
			return fmt.Errorf("keys rotate: %w (run `keys rotate -rewrap-only` to resume)", err)
		}
		fmt.Fprintf(stdout, "re-sealed %d of %d records under key %d\n", res.Rewrapped, res.Scanned, kr.PrimaryID())
		if err := audit.New(store.Backend()).Record(ctx, finchconnect.AuditRecord{
			Action: finchconnect.AuditRotated, ConnectionID: "*", Actor: "operator",
			Purpose: fmt.Sprintf("re-sealed %d of %d records under key %d", res.Rewrapped, res.Scanned, kr.PrimaryID()),
		}); err != nil {
			fmt.Fprintf(stderr, "warning: the audit trail refused the rotation record: %v\n", err)
		}
		return keyStatus(ctx, store, kr, stdout)
	case "retire":
		usage, err := store.KeyUsage(ctx)
		if err != nil {
			return err
		}
		if n := usage[uint32(retireID)]; n > 0 {
			return fmt.Errorf("keys retire: %d records are still sealed under key %d; run `finchconnect keys rotate -rewrap-only` first", n, retireID)
		}
		if j, err := store.OpenJournal(filepath.Join(sf.dataDir, "journal")); err == nil {
			pending := j.Pending()
			j.Close()
			if pending > 0 {
				return fmt.Errorf("keys retire: the journal still holds %d tokens for the store; let a server replay it first", pending)
			}
		}
		if uint32(retireID) == kr.PrimaryID() {
			return fmt.Errorf("keys retire: key %d is the primary key", retireID)
		}
		path, err := sf.writableKeyFile()
		if err != nil {
			return err
		}
		if err := removeKey(path, uint32(retireID)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed key %d from %s; no record uses it\n", retireID, path)
	}
	return nil
}

func keyStatus(ctx context.Context, store *tokenstore.Store, kr *keyring.Keyring, w io.Writer) error {
	usage, err := store.KeyUsage(ctx)
	if err != nil {
		return err
	}
	ids := kr.IDs()
	for id := range usage {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY ID\tROLE\tRECORDS")
	for _, id := range ids {
		role := "read only"
		switch {
		case id == 0:
			role = "not a sealed value (unreadable rows)"
		case id == kr.PrimaryID():
			role = "primary"
		case !kr.Has(id):
			role = "MISSING from the keyring: these records cannot be opened"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\n", id, role, usage[id])
	}
	return tw.Flush()
}

// writableKeyFile is the key file rotate and retire edit: -keys-file, or the
// demo's key file. Keys given in the environment cannot be edited here.
func (f *storeFlags) writableKeyFile() (string, error) {
	switch {
	case f.keysFile != "":
		return f.keysFile, nil
	case f.keys != "":
		return "", errors.New("keys are set with -keys/FINCHCONNECT_KEYS, which this command cannot edit: " +
			"put `finchconnect keygen -id N` first in that list yourself, restart, then run `keys rotate -rewrap-only`")
	default:
		if _, err := os.Stat(f.demoKeyFile()); err != nil {
			return "", errors.New("no key file: set -keys-file (FINCHCONNECT_KEYS_FILE)")
		}
		return f.demoKeyFile(), nil
	}
}

// addKey generates a key with an unused id and appends it to the key file,
// as a read-only key: servers that load it can open what it seals before
// any server seals with it.
func addKey(path string) (uint32, error) {
	kr, err := keyring.LoadFile(path)
	if err != nil {
		return 0, err
	}
	id := slices.Max(kr.IDs()) + 1
	key, err := keyring.Generate(id)
	if err != nil {
		return 0, err
	}
	lines, err := readLines(path)
	if err != nil {
		return 0, err
	}
	return id, writeKeyFile(path, append(lines, key.Encode()))
}

// promoteKey moves key id to the top of the key file, making it the
// primary.
func promoteKey(path string, id uint32) error {
	lines, err := readLines(path)
	if err != nil {
		return err
	}
	prefix := fmt.Sprintf("%d:", id)
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), prefix) })
	if i < 0 {
		return fmt.Errorf("key %d is not in %s", id, path)
	}
	line := lines[i]
	lines = slices.Delete(lines, i, i+1)
	// The primary is the first key entry; comments may stand before it.
	first := slices.IndexFunc(lines, func(l string) bool {
		l = strings.TrimSpace(l)
		return l != "" && !strings.HasPrefix(l, "#")
	})
	if first < 0 {
		first = len(lines)
	}
	return writeKeyFile(path, slices.Insert(lines, first, line))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// removeKey deletes the line of key id from the key file.
func removeKey(path string, id uint32) error {
	lines, err := readLines(path)
	if err != nil {
		return err
	}
	prefix := fmt.Sprintf("%d:", id)
	kept := slices.DeleteFunc(lines, func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), prefix) })
	return writeKeyFile(path, kept)
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

// writeKeyFile replaces the key file atomically: a crash leaves the old file
// or the new one, never half of either.
func writeKeyFile(path string, lines []string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keys-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(fileMode0600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if _, err := keyring.LoadFile(tmp.Name()); err != nil {
		return fmt.Errorf("the new key file does not parse: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}
