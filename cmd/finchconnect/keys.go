package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/audit"
	"github.com/finchconnect/finchconnect/connect"
	"github.com/finchconnect/finchconnect/finch"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/tokenstore"
)

// The keys commands show and rotate the vault's encryption keys.
//
// rotate works while servers run, in three steps that keep every server
// able to open every record: it adds a new key to the key file as a
// read-only key and waits -reload-wait for the servers to re-read the file
// (they do every -keys-reload); then it makes the new key the primary and
// waits again; then it re-seals every record under it, resumably and at
// -rate records per second. With -rewrap-only it does the last step alone
// (to resume, or after keys were changed by hand). retire removes a key from
// the key file, and refuses while any record, a token held in the journal,
// or a token staged in the callback ledger still uses it, or when it cannot
// tell.

// keysStatusCmd is `keys status`.
type keysStatusCmd struct{ sf storeFlags }

func (*keysStatusCmd) spec() cmdSpec {
	return cmdSpec{name: "keys status", env: sharedEnv,
		summary: "Show which keys seal the vault; exit 1 if a record's key is missing or wrong.",
		detail: "It counts the records sealed under each key id, and opens a few records of each key, so a key\n" +
			"of the right id but the wrong value is found too."}
}

func (k *keysStatusCmd) flags(fs *flag.FlagSet) { k.sf.register(fs) }

func (k *keysStatusCmd) run(ctx context.Context, c *cli, _ []string) error {
	store, closeStore, err := k.sf.openVault(ctx, c.stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	return keyStatus(ctx, store, k.sf.journalPath(), c.stdout)
}

// keyStatus prints the key table, and fails when records cannot be opened.
func keyStatus(ctx context.Context, store *tokenstore.Store, journal string, w io.Writer) error {
	rep, err := checkKeys(ctx, store, journal)
	if err != nil {
		return err
	}
	kr := store.Keyring()
	ids := kr.IDs()
	for id := range rep.usage {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	ids = append(ids, rep.missing...)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY ID\tROLE\tRECORDS\tJOURNAL")
	for _, id := range ids {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\n", id, keyRole(rep, kr, id), rep.usage[id], rep.journal[id])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := rep.problem(); err != nil {
		return fmt.Errorf("%v: those connections cannot be used. Add the key that sealed them to -keys or -keys-file (FINCHCONNECT_KEYS, FINCHCONNECT_KEYS_FILE)", err)
	}
	return nil
}

func keyRole(rep *keyReport, kr *keyring.Keyring, id uint32) string {
	switch {
	case id == 0:
		return "not a sealed value (unreadable rows)"
	case !kr.Has(id):
		return "MISSING from the keyring: these records cannot be opened"
	case slices.Contains(rep.wrongKeys(), id):
		return "WRONG KEY: it does not open the records sealed under its id"
	case id == kr.PrimaryID():
		return "primary"
	}
	return "read only"
}

// keysRotateCmd is `keys rotate`.
type keysRotateCmd struct {
	sf         storeFlags
	rate       float64
	rewrapOnly bool
	reloadWait time.Duration
	asJSON     bool
}

func (*keysRotateCmd) spec() cmdSpec {
	return cmdSpec{name: "keys rotate", env: sharedEnv,
		summary: "Add a new primary key to the key file and re-seal every record under it.",
		detail: "It works while servers run: the new key is added read-only, then made the primary, each time\n" +
			"waiting -reload-wait for servers to re-read the key file; then every record is re-sealed.\n" +
			"See docs/key-rotation.md."}
}

func (k *keysRotateCmd) flags(fs *flag.FlagSet) {
	k.sf.register(fs)
	fs.Float64Var(&k.rate, "rate", 0, "records re-sealed per second at most (0: as fast as the store allows)")
	fs.BoolVar(&k.rewrapOnly, "rewrap-only", false, "do not add a key; re-seal records under the current primary (resume an interrupted rotation)")
	fs.DurationVar(&k.reloadWait, "reload-wait", 25*time.Second, "how long servers need to re-read the key file (their -keys-reload, plus margin); 0 when no server runs")
	fs.BoolVar(&k.asJSON, "json", false, "print the summary as JSON")
}

func (k *keysRotateCmd) run(ctx context.Context, c *cli, _ []string) error {
	if !k.rewrapOnly {
		if err := k.addPrimary(ctx, c); err != nil {
			return err
		}
	}
	store, closeStore, err := k.sf.openVault(ctx, c.stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	kr := store.Keyring()
	bar := newProgress(c.stderr, "re-sealing")
	res, err := store.Rewrap(ctx, tokenstore.RewrapOptions{
		Rate:     k.rate,
		Progress: func(done, total int, _ string) { bar.update(done, total) },
	})
	bar.finish()
	if err != nil {
		return fmt.Errorf("re-sealing stopped (%s); run `finchconnect keys rotate -rewrap-only` to resume", plainError(err))
	}
	summary := fmt.Sprintf("re-sealed %d of %d records under key %d", res.Rewrapped, res.Scanned, kr.PrimaryID())
	if err := audit.New(store.Backend()).Record(ctx, finchconnect.AuditRecord{
		Action: finchconnect.AuditRotated, ConnectionID: "*", Actor: "operator", Purpose: summary,
	}); err != nil {
		fmt.Fprintf(c.stderr, "finchconnect: warning: the audit trail refused the rotation record: %s\n", plainError(err))
	}
	if err := printSummary(c.stdout, k.asJSON, rotateSummary{Primary: kr.PrimaryID(), Scanned: res.Scanned, Rewrapped: res.Rewrapped, Failed: res.Failed}); err != nil {
		return err
	}
	if len(res.Failed) > 0 {
		return fmt.Errorf("%d records did not open and were not re-sealed (%s…): run `finchconnect keys status`", len(res.Failed), res.Failed[0])
	}
	if k.asJSON {
		return nil
	}
	fmt.Fprintln(c.stdout)
	return keyStatus(ctx, store, k.sf.journalPath(), c.stdout)
}

// addPrimary adds a new key to the key file, waits for servers to load
// it, makes it the primary and waits again.
func (k *keysRotateCmd) addPrimary(ctx context.Context, c *cli) error {
	path, err := k.sf.writableKeyFile()
	if err != nil {
		return err
	}
	id, err := addKey(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "added key %d to %s as a read-only key; waiting %s for servers to load it\n", id, path, k.reloadWait)
	if err := sleepCtx(ctx, k.reloadWait); err != nil {
		return err
	}
	if err := promoteKey(path, id); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "made key %d the primary; waiting %s for servers to seal with it\n", id, k.reloadWait)
	return sleepCtx(ctx, k.reloadWait)
}

type rotateSummary struct {
	Primary   uint32   `json:"primary_key"`
	Scanned   int      `json:"records_scanned"`
	Rewrapped int      `json:"records_resealed"`
	Failed    []string `json:"records_failed"`
}

func (s rotateSummary) rows() [][2]string {
	return [][2]string{
		{"primary key", fmt.Sprint(s.Primary)},
		{"records scanned", fmt.Sprint(s.Scanned)},
		{"records re-sealed", fmt.Sprint(s.Rewrapped)},
		{"records that did not open", fmt.Sprint(len(s.Failed))},
	}
}

// keysRetireCmd is `keys retire`.
type keysRetireCmd struct {
	sf  storeFlags
	id  uint
	yes bool
}

func (*keysRetireCmd) spec() cmdSpec {
	return cmdSpec{name: "keys retire", env: sharedEnv,
		summary: "Remove a key no record uses from the key file.",
		detail: "It refuses while a record, a token in the journal or a token staged in the callback ledger\n" +
			"still uses the key. The key is gone for good: it asks you to type its id first (or takes -yes,\n" +
			"for scripts); without a terminal and without -yes it refuses."}
}

func (k *keysRetireCmd) flags(fs *flag.FlagSet) {
	k.sf.register(fs)
	fs.UintVar(&k.id, "id", 0, "the key id to remove (required)")
	fs.BoolVar(&k.yes, "yes", false, "do not ask for confirmation (for scripts)")
}

func (k *keysRetireCmd) run(ctx context.Context, c *cli, _ []string) error {
	if k.id == 0 {
		return errors.New("-id is required: the id of the key to retire, as `finchconnect keys status` lists them")
	}
	// uint32(k.id) below must not wrap around onto another key.
	if k.id > math.MaxUint32 {
		return fmt.Errorf("-id %d is not a key id (they run from 1 to %d)", k.id, uint32(math.MaxUint32))
	}
	id := uint32(k.id)
	store, closeStore, err := k.sf.openVault(ctx, c.stderr)
	if err != nil {
		return err
	}
	defer closeStore()
	if kr := store.Keyring(); !kr.Has(id) {
		return fmt.Errorf("key %d is not in the keyring (it holds keys %s): nothing to retire", id, joinIDs(kr.IDs()))
	}
	if id == store.Keyring().PrimaryID() {
		return fmt.Errorf("key %d is the primary key, which seals new tokens: rotate to a new primary first (`finchconnect keys rotate`)", id)
	}
	if err := k.checkUnused(ctx, store, id); err != nil {
		return err
	}
	path, err := k.sf.writableKeyFile()
	if err != nil {
		return err
	}
	if err := c.confirm(fmt.Sprintf("remove key %d from %s for good", id, path), fmt.Sprint(id), k.yes); err != nil {
		return err
	}
	if err := removeKey(path, id); err != nil {
		return fmt.Errorf("cannot remove key %d: %s", id, plainError(err))
	}
	fmt.Fprintf(c.stdout, "removed key %d from %s; no record, journal record or staged callback uses it\n", id, path)
	return nil
}

func (k *keysRetireCmd) checkUnused(ctx context.Context, store *tokenstore.Store, id uint32) error {
	usage, err := store.KeyUsage(ctx)
	if err != nil {
		return fmt.Errorf("cannot tell which records use key %d (%s), so it stays", id, plainError(err))
	}
	if n := usage[id]; n > 0 {
		return fmt.Errorf("%d records are still sealed under key %d: run `finchconnect keys rotate -rewrap-only` first", n, id)
	}
	if err := checkJournal(k.sf.journalPath(), id); err != nil {
		return err
	}
	return checkStaged(ctx, store, id)
}

// writableKeyFile is the key file rotate and retire edit: -keys-file, or the
// demo's key file. Keys given in the environment cannot be edited here.
func (f *storeFlags) writableKeyFile() (string, error) {
	if err := f.checkKeySources(); err != nil {
		return "", err
	}
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
	return id, writeKeyFile(path, append(lines, key.Encode()), append(kr.IDs(), id))
}

// promoteKey moves key id to the top of the key file, making it the
// primary. An entry alone on its line moves with the line (and its
// comment); one that shares a line with other keys moves to a line of its
// own, and the others stay where they are.
func promoteKey(path string, id uint32) error {
	kr, lines, pos, err := locateKey(path, id)
	if err != nil {
		return err
	}
	if kr.PrimaryID() == id {
		return nil
	}
	want := append([]uint32{id}, slices.DeleteFunc(kr.IDs(), func(k uint32) bool { return k == id })...)
	lines, moved := cutEntry(lines, pos)
	// The primary is the first key entry; comments may stand before it.
	first := slices.IndexFunc(lines, func(l string) bool { return countEntries(l) > 0 })
	if first < 0 {
		first = len(lines)
	}
	return writeKeyFile(path, slices.Insert(lines, first, moved), want)
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

// removeKey deletes the entry of key id from the key file, and nothing
// else: other keys on its line, and every comment not on its line, stay.
// It fails if id is not in the file.
func removeKey(path string, id uint32) error {
	kr, lines, pos, err := locateKey(path, id)
	if err != nil {
		return err
	}
	want := slices.DeleteFunc(kr.IDs(), func(k uint32) bool { return k == id })
	lines, _ = cutEntry(lines, pos)
	return writeKeyFile(path, lines, want)
}

// keyPos is where a key's entry stands in a key file: its line, and its
// place among the line's comma-separated fields.
type keyPos struct{ line, field int }

// locateKey loads the key file at path and finds the entry of key id in
// its lines, reading them as [keyring.Parse] does: '#' starts a comment,
// commas separate entries, blank entries are skipped, and an entry's id is
// read as a number ("04" and " 4 " are key 4).
func locateKey(path string, id uint32) (*keyring.Keyring, []string, keyPos, error) {
	kr, err := keyring.LoadFile(path)
	if err != nil {
		return nil, nil, keyPos{}, err
	}
	if !kr.Has(id) {
		return nil, nil, keyPos{}, fmt.Errorf("key %d is not in %s (it holds keys %v)", id, path, kr.IDs())
	}
	lines, err := readLines(path)
	if err != nil {
		return nil, nil, keyPos{}, err
	}
	for i, line := range lines {
		for j, field := range strings.Split(stripComment(line), ",") {
			if strings.TrimSpace(field) == "" {
				continue
			}
			k, err := keyring.ParseKey(field)
			if err != nil {
				return nil, nil, keyPos{}, fmt.Errorf("key file %s, line %d: %w", path, i+1, err)
			}
			if k.ID == id {
				return kr, lines, keyPos{i, j}, nil
			}
		}
	}
	// LoadFile found it, so the two readings disagree.
	return nil, nil, keyPos{}, fmt.Errorf("key %d: cannot find its entry in %s", id, path)
}

// stripComment returns line without its '#' comment.
func stripComment(line string) string {
	content, _, _ := strings.Cut(line, "#")
	return content
}

// countEntries returns how many key entries line holds: its non-blank
// comma-separated fields before any comment.
func countEntries(line string) int {
	n := 0
	for field := range strings.SplitSeq(stripComment(line), ",") {
		if strings.TrimSpace(field) != "" {
			n++
		}
	}
	return n
}

// cutEntry removes the entry at pos from lines and returns the lines and a
// line holding the entry alone. When no other entry shares its line, the
// whole line goes, comment and all (the comment is about that key), and is
// what it returns; otherwise the rest of the line, comment included, stays.
func cutEntry(lines []string, pos keyPos) ([]string, string) {
	line := lines[pos.line]
	lines = slices.Clone(lines)
	if countEntries(line) == 1 {
		return slices.Delete(lines, pos.line, pos.line+1), strings.TrimSpace(line)
	}
	content, comment, hasComment := strings.Cut(line, "#")
	fields := strings.Split(content, ",")
	entry := strings.TrimSpace(fields[pos.field])
	rest := strings.Join(slices.Delete(fields, pos.field, pos.field+1), ",")
	if hasComment {
		if strings.TrimRight(rest, " \t") == rest {
			rest += " "
		}
		rest += "#" + comment
	}
	lines[pos.line] = rest
	return lines, entry
}

// readLines returns the lines of the file at path, split as [keyring.Parse]
// splits them; the newline that ends the last line does not start another.
func readLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, "\n"), nil
}

// writeKeyFile replaces the key file atomically with lines: a crash leaves
// the old file or the new one, never half of either. Before it replaces the
// file, it loads the new one and checks that it holds exactly the keys
// want, in that order (the primary first); otherwise the file is left as it
// was.
func writeKeyFile(path string, lines []string, want []uint32) error {
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
	kr, err := keyring.LoadFile(tmp.Name())
	if err != nil {
		return fmt.Errorf("the new key file does not parse: %w", err)
	}
	if got := kr.IDs(); !slices.Equal(got, want) {
		return fmt.Errorf("the new key file would hold keys %v, want %v; %s is unchanged", got, want, path)
	}
	return os.Rename(tmp.Name(), path)
}

// checkJournal refuses to retire key id while the local journal at path
// holds a token sealed under it: the server replays it into the store, and
// could not open it without the key. It only reads the journal, which the
// running server owns; if it cannot read it, it refuses too.
func checkJournal(path string, id uint32) error {
	held, err := tokenstore.PendingInJournal(path)
	if err != nil {
		return fmt.Errorf("cannot tell whether the journal holds tokens under key %d (%s), so it stays", id, plainError(err))
	}
	n := 0
	for _, h := range held {
		if h.KeyID == id {
			n++
		}
	}
	if n > 0 {
		return fmt.Errorf("the journal %s still holds %d tokens sealed under key %d for the store; "+
			"let a server replay it first (it does within seconds of the store answering), then run `keys retire` again", path, n, id)
	}
	return nil
}

// checkStaged refuses to retire key id while the callback ledger holds a
// token staged under it: the write-ahead of a callback (mostly a
// re-authentication) whose vault write has not landed
// ([connect.Service.StagedKeyIDs]). Such an entry lives for up to an hour,
// the recovery loop stores it from the staged copy, and Rewrap does not
// re-seal it. If the ledger cannot be read, it refuses too.
func checkStaged(ctx context.Context, store *tokenstore.Store, id uint32) error {
	// The service is only asked about its records: it calls no Finch.
	svc, err := connect.New(connect.Config{RedirectURI: "http://localhost/callback"}, &finch.Client{}, store)
	if err != nil {
		return err
	}
	ids, err := svc.StagedKeyIDs(ctx)
	if err != nil {
		return fmt.Errorf("cannot tell whether the callback ledger holds tokens staged under key %d (%s), so it stays", id, plainError(err))
	}
	if n := ids[id]; n > 0 {
		return fmt.Errorf("%d callbacks have a token staged in the callback ledger under key %d "+
			"(re-authentications whose vault write has not landed yet); a running server's recovery loop stores them "+
			"once they are -recover-after old (default 3m), and a server stores them when it starts: "+
			"wait for that, or restart a server, then run `keys retire` again", n, id)
	}
	return nil
}
