// Command scale is the scale run of issue #8: it seeds embedded SQLite
// vaults through the product's own packages (tokenstore, tokenstore/sqlite,
// keyring), showing progress, one with a thousand connections and one with
// a million; measures lookup latency in both the same way, in alternating
// rounds so that whatever else runs on the machine weighs on both alike;
// then times the re-encryption of every connection of the large vault under
// a new primary key (tokenstore.Store.Rewrap), the step of a key rotation
// that touches every row.
//
// It prints a Markdown report and, with -out, writes it to a file. The
// database lives in -dir (a fresh temporary folder by default, removed at
// the end unless -keep). It takes minutes; bench/run.sh runs it only when
// asked (SCALE=1).
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/finchconnect/finchconnect"
	"github.com/finchconnect/finchconnect/keyring"
	"github.com/finchconnect/finchconnect/tokenstore"
	"github.com/finchconnect/finchconnect/tokenstore/sqlite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

type config struct {
	dir      string
	keep     bool
	small    int
	large    int
	lookups  int
	rounds   int
	warmup   int
	writers  int
	mmapSize int64
	rewrap   bool
	out      string
	progress time.Duration
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c config
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.dir, "dir", "", "folder for the database (default: a new temporary folder)")
	fs.BoolVar(&c.keep, "keep", false, "keep the database afterwards")
	fs.IntVar(&c.small, "small", 1000, "connections at the first lookup measurement")
	fs.IntVar(&c.large, "n", 1000000, "connections at the second lookup measurement and for the rewrap")
	fs.IntVar(&c.lookups, "lookups", 20000, "lookups per round and vault")
	fs.IntVar(&c.rounds, "rounds", 5, "measurement rounds, alternating between the two vaults")
	fs.IntVar(&c.warmup, "warmup", 5000, "lookups of each vault before the first round, not measured")
	fs.IntVar(&c.writers, "writers", 64, "concurrent writers while seeding (the SQLite backend group-commits them)")
	fs.Int64Var(&c.mmapSize, "mmap-size", 0, "sqlite.Options.MmapSize for both vaults (0: the backend's default, no map; 1073741824: a 1 GiB map)")
	fs.BoolVar(&c.rewrap, "rewrap", true, "re-encrypt every connection under a new key at the end")
	fs.StringVar(&c.out, "out", "", "also write the Markdown report to this file")
	fs.DurationVar(&c.progress, "progress", 2*time.Second, "how often to print progress")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.small < 1 || c.large < c.small || c.lookups < 1 || c.rounds < 1 || c.warmup < 0 || c.writers < 1 {
		return errors.New("want 1 ≤ -small ≤ -n, -lookups ≥ 1, -rounds ≥ 1, -warmup ≥ 0, -writers ≥ 1")
	}
	if c.dir == "" {
		d, err := os.MkdirTemp("", "finchconnect-scale-")
		if err != nil {
			return err
		}
		c.dir = d
	}
	if !c.keep {
		defer os.RemoveAll(c.dir)
	}
	rep, err := scale(ctx, c, stderr)
	if rep != "" {
		fmt.Fprint(stdout, rep)
		if c.out != "" {
			if werr := os.WriteFile(c.out, []byte(rep), 0o644); werr != nil {
				return errors.Join(err, werr)
			}
		}
	}
	return err
}

func scale(ctx context.Context, c config, log io.Writer) (string, error) {
	k1, err := keyring.Generate(1)
	if err != nil {
		return "", err
	}
	kr1, err := keyring.New(k1)
	if err != nil {
		return "", err
	}
	open := func(name string) (*tokenstore.Store, func() error, error) {
		b, err := sqlite.OpenWith(ctx, filepath.Join(c.dir, name), sqlite.Options{MmapSize: c.mmapSize})
		if err != nil {
			return nil, nil, err
		}
		return tokenstore.New(b, kr1), b.Close, nil
	}
	smallStore, closeSmall, err := open("small.db")
	if err != nil {
		return "", err
	}
	defer closeSmall()
	store, closeLarge, err := open("scale.db")
	if err != nil {
		return "", err
	}
	defer closeLarge()
	path := filepath.Join(c.dir, "scale.db")

	var b strings.Builder
	fmt.Fprintf(&b, "# Scale run %s\n\n", time.Now().UTC().Format("2006-01-02T15:04Z"))
	mmap := "no memory map (the backend's default)"
	switch {
	case c.mmapSize < 0:
		mmap = "no memory map"
	case c.mmapSize > 0:
		mmap = fmt.Sprintf("a %d MiB memory map", c.mmapSize>>20)
	}
	fmt.Fprintf(&b, "Embedded SQLite stores (WAL, synchronous=FULL, group commit, %s), %d concurrent writers while seeding. "+
		"Two vaults, of %d and %d connections, each warmed with %d lookups, then measured in %d rounds that alternate between them (the order swapped every round); "+
		"each round times %d lookups, one at a time, of ids drawn uniformly at random from those stored.\n\n",
		mmap, c.writers, c.small, c.large, c.warmup, c.rounds, c.lookups)

	if err := seed(ctx, smallStore, 0, c.small, c.writers, c.progress, log); err != nil {
		return "", err
	}
	seedStart := time.Now()
	if err := seed(ctx, store, 0, c.large, c.writers, c.progress, log); err != nil {
		return "", err
	}
	seeded := time.Since(seedStart)
	size, wal := dbSize(path)
	fmt.Fprintf(&b, "Seeding %d connections took %s (%.0f/s); the database is %.0f MiB, %.0f MiB of it write-ahead log when the lookups ran.\n\n",
		c.large, seeded.Round(time.Second), float64(c.large)/seeded.Seconds(), float64(size)/(1<<20), float64(wal)/(1<<20))

	vaults := []*vault{
		{store: smallStore, stored: c.small, rng: mrand.New(mrand.NewPCG(uint64(c.small), 8))},
		{store: store, stored: c.large, rng: mrand.New(mrand.NewPCG(uint64(c.large), 8))},
	}
	for _, v := range vaults {
		if err := v.warm(ctx, c.warmup); err != nil {
			return "", err
		}
	}
	for r := range c.rounds {
		fmt.Fprintf(log, "lookups: round %d/%d\n", r+1, c.rounds)
		for i := range vaults {
			if err := vaults[(i+r)%2].round(ctx, c.lookups); err != nil {
				return "", err
			}
		}
	}
	small, large := vaults[0], vaults[1]
	fmt.Fprintf(&b, "| lookup | stored | p50 µs | p99 µs, median of rounds (range) | p99 µs, all samples | max µs |\n|---|---|---|---|---|---|\n")
	for _, m := range []struct {
		name string
		d    func(*vault) *samples
	}{
		{"`Store.Get` (read + decrypt)", func(v *vault) *samples { return &v.get }},
		{"`Store.Lookup` (metadata, no decrypt)", func(v *vault) *samples { return &v.lookup }},
	} {
		for _, v := range vaults {
			st := m.d(v).stats()
			fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f (%.0f–%.0f) | %.0f | %.0f |\n", m.name, v.stored, us(st.p50), us(st.roundP99), us(st.minRoundP99), us(st.maxRoundP99), us(st.p99), us(st.max))
		}
	}
	sg, lg := small.get.stats(), large.get.stats()
	sl, ll := small.lookup.stats(), large.lookup.stats()
	fmt.Fprintf(&b, "\np99 at %d over %d (target ≤ 2×), median of rounds: `Store.Get` %.2f×, `Store.Lookup` %.2f×; over all samples: %.2f× and %.2f×.\n",
		c.large, c.small, ratio(lg.roundP99, sg.roundP99), ratio(ll.roundP99, sl.roundP99), ratio(lg.p99, sg.p99), ratio(ll.p99, sl.p99))
	if !c.rewrap {
		return b.String(), nil
	}

	// Rotation: a new primary key, the old one kept to open what it sealed.
	k2, err := keyring.Generate(2)
	if err != nil {
		return b.String(), err
	}
	kr2, err := keyring.New(k2, k1)
	if err != nil {
		return b.String(), err
	}
	store.SetKeyring(kr2)
	fmt.Fprintf(log, "rewrap: re-encrypting %d connections under key 2\n", c.large)
	var last time.Time
	start := time.Now()
	res, err := store.Rewrap(ctx, tokenstore.RewrapOptions{Progress: func(done, total int, _ string) {
		if now := time.Now(); now.Sub(last) >= c.progress || done == total {
			last = now
			el := now.Sub(start)
			fmt.Fprintf(log, "rewrap: %d/%d (%.0f/s, %s elapsed)\n", done, total, float64(done)/el.Seconds(), el.Round(time.Second))
		}
	}})
	took := time.Since(start)
	if err != nil {
		return b.String(), fmt.Errorf("rewrap after %d rows: %w", res.Rewrapped, err)
	}
	usage, err := store.KeyUsage(ctx)
	if err != nil {
		return b.String(), err
	}
	if res.Rewrapped != c.large || usage[2] != c.large || len(usage) != 1 {
		return b.String(), fmt.Errorf("rewrap re-sealed %d of %d; key usage afterwards %v", res.Rewrapped, c.large, usage)
	}
	fmt.Fprintf(&b, "\nRe-encrypting all %d connections under a new key (`Store.Rewrap`, default options): %s, %.0f records/s (target ≥ 20,000/s). Afterwards every row is sealed under the new key (`Store.KeyUsage`).\n", res.Rewrapped, took.Round(time.Second), float64(res.Rewrapped)/took.Seconds())
	return b.String(), nil
}

// connectionID is the id of the i-th seeded connection: shaped like Finch's
// (a UUID), spread uniformly over the key space as random UUIDs are, and
// computable again for lookups.
func connectionID(i int) string {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(i))
	h := sha256.Sum256(n[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// seed stores connections from..to-1 from `writers` goroutines.
func seed(ctx context.Context, store *tokenstore.Store, from, to, writers int, every time.Duration, log io.Writer) error {
	if from >= to {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next, done atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range writers {
		wg.Go(func() {
			tok := make([]byte, 32)
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				if _, err := rand.Read(tok); err != nil {
					panic(err) // crypto/rand does not fail on supported platforms
				}
				err := store.Put(ctx, finchconnect.Connection{
					ConnectionID:   connectionID(i),
					CustomerID:     fmt.Sprintf("customer-%d", i),
					CustomerName:   fmt.Sprintf("Employer %d", i),
					ProviderID:     "gusto",
					Products:       []string{"company", "directory", "individual", "employment"},
					EntityIDs:      []string{},
					ConnectionType: "provider",
					ClientType:     "production",
					Status:         finchconnect.StatusConnected,
					AccessToken:    finchconnect.NewSecret(base64.RawURLEncoding.EncodeToString(tok)),
				})
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("seed connection %d: %w", i, err)
					}
					mu.Unlock()
					cancel()
					return
				}
				done.Add(1)
			}
		})
	}
	stop := make(chan struct{})
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		t := time.NewTicker(every)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d := int(done.Load())
				rate := float64(d) / time.Since(start).Seconds()
				eta := time.Duration(float64(to-from-d)/math.Max(rate, 1)) * time.Second
				fmt.Fprintf(log, "seed: %d/%d stored (%.0f/s, about %s to go)\n", from+d, to, rate, eta.Round(time.Second))
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-reported
	if first != nil {
		return first
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fmt.Fprintf(log, "seed: %d stored\n", to)
	return nil
}

type latencies struct{ p50, p99, max time.Duration }

// vault is one store under measurement and the lookups timed so far.
type vault struct {
	store       *tokenstore.Store
	stored      int
	rng         *mrand.Rand // ids, not secrets: reproducible draws
	get, lookup samples
}

// samples are latencies, kept by round.
type samples struct{ rounds [][]time.Duration }

type sampleStats struct {
	latencies                          // over all samples
	roundP99, minRoundP99, maxRoundP99 time.Duration
}

func (s *samples) stats() sampleStats {
	var all, p99s []time.Duration
	for _, r := range s.rounds {
		all = append(all, r...)
		p99s = append(p99s, summarize(slices.Clone(r)).p99)
	}
	slices.Sort(p99s)
	return sampleStats{latencies: summarize(all), roundP99: p99s[len(p99s)/2], minRoundP99: p99s[0], maxRoundP99: p99s[len(p99s)-1]}
}

// warm runs k lookups, not timed, to fill the page cache and the connection
// pool as a running server's would be.
func (v *vault) warm(ctx context.Context, k int) error {
	for range k {
		if _, err := v.store.Get(ctx, connectionID(v.rng.IntN(v.stored))); err != nil {
			return err
		}
	}
	return nil
}

// round times k lookups of random stored connections, one at a time, with
// Store.Get (what the company page and the proxy do) and with Store.Lookup
// (metadata only).
func (v *vault) round(ctx context.Context, k int) error {
	get := make([]time.Duration, 0, k)
	look := make([]time.Duration, 0, k)
	for range k {
		id := connectionID(v.rng.IntN(v.stored))
		t0 := time.Now()
		c, err := v.store.Get(ctx, id)
		get = append(get, time.Since(t0))
		if err != nil || c.AccessToken.IsZero() {
			return fmt.Errorf("get %s: %v", id, err)
		}
		id = connectionID(v.rng.IntN(v.stored))
		t0 = time.Now()
		_, err = v.store.Lookup(ctx, id)
		look = append(look, time.Since(t0))
		if err != nil {
			return fmt.Errorf("lookup %s: %w", id, err)
		}
	}
	v.get.rounds = append(v.get.rounds, get)
	v.lookup.rounds = append(v.lookup.rounds, look)
	return nil
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

func summarize(d []time.Duration) latencies {
	slices.Sort(d)
	at := func(p float64) time.Duration { return d[min(len(d)-1, max(0, int(math.Ceil(float64(len(d))*p))-1))] }
	return latencies{p50: at(0.50), p99: at(0.99), max: d[len(d)-1]}
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

// dbSize is the size of the database file and its write-ahead log, and
// that of the log alone.
func dbSize(path string) (total, wal int64) {
	if fi, err := os.Stat(path); err == nil {
		total = fi.Size()
	}
	if fi, err := os.Stat(path + "-wal"); err == nil {
		wal = fi.Size()
	}
	return total + wal, wal
}
