// Command scale is the scale run of issue #8: it seeds an embedded SQLite
// vault with a million connections through the product's own packages
// (tokenstore, tokenstore/sqlite, keyring), showing progress; measures
// lookup latency when the vault holds a thousand connections and again at a
// million; then times the re-encryption of every connection under a new
// primary key (tokenstore.Store.Rewrap), the step of a key rotation that
// touches every row.
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
	writers  int
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
	fs.IntVar(&c.lookups, "lookups", 20000, "lookups per measurement")
	fs.IntVar(&c.writers, "writers", 64, "concurrent writers while seeding (the SQLite backend group-commits them)")
	fs.BoolVar(&c.rewrap, "rewrap", true, "re-encrypt every connection under a new key at the end")
	fs.StringVar(&c.out, "out", "", "also write the Markdown report to this file")
	fs.DurationVar(&c.progress, "progress", 2*time.Second, "how often to print progress")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.small < 1 || c.large < c.small || c.lookups < 1 || c.writers < 1 {
		return errors.New("want 1 ≤ -small ≤ -n, -lookups ≥ 1, -writers ≥ 1")
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
	path := filepath.Join(c.dir, "scale.db")
	backend, err := sqlite.Open(ctx, path)
	if err != nil {
		return "", err
	}
	defer backend.Close()
	k1, err := keyring.Generate(1)
	if err != nil {
		return "", err
	}
	kr1, err := keyring.New(k1)
	if err != nil {
		return "", err
	}
	store := tokenstore.New(backend, kr1)

	var b strings.Builder
	fmt.Fprintf(&b, "# Scale run %s\n\n", time.Now().UTC().Format("2006-01-02T15:04Z"))
	fmt.Fprintf(&b, "Embedded SQLite store (WAL, synchronous=FULL, group commit), %d concurrent writers while seeding; %d lookups per measurement, one at a time, of ids drawn uniformly at random from those stored.\n\n", c.writers, c.lookups)

	seedStart := time.Now()
	if err := seed(ctx, store, 0, c.small, c.writers, c.progress, log); err != nil {
		return "", err
	}
	small, err := measureLookups(ctx, store, c.small, c.lookups)
	if err != nil {
		return "", err
	}
	if err := seed(ctx, store, c.small, c.large, c.writers, c.progress, log); err != nil {
		return "", err
	}
	seeded := time.Since(seedStart)
	large, err := measureLookups(ctx, store, c.large, c.lookups)
	if err != nil {
		return "", err
	}
	size := dbSize(path)
	fmt.Fprintf(&b, "Seeding %d connections took %s (%.0f/s); the database is %.0f MiB.\n\n", c.large, seeded.Round(time.Second), float64(c.large)/seeded.Seconds(), float64(size)/(1<<20))
	fmt.Fprintf(&b, "| lookup | stored | p50 µs | p99 µs | max µs |\n|---|---|---|---|---|\n")
	for _, m := range []struct {
		name string
		n    int
		l    lookupStats
	}{
		{"`Store.Get` (read + decrypt)", c.small, small}, {"`Store.Get` (read + decrypt)", c.large, large},
	} {
		fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %.0f |\n", m.name, m.n, us(m.l.get.p50), us(m.l.get.p99), us(m.l.get.max))
	}
	for _, m := range []struct {
		n int
		l lookupStats
	}{{c.small, small}, {c.large, large}} {
		fmt.Fprintf(&b, "| `Store.Lookup` (metadata, no decrypt) | %d | %.0f | %.0f | %.0f |\n", m.n, us(m.l.lookup.p50), us(m.l.lookup.p99), us(m.l.lookup.max))
	}
	fmt.Fprintf(&b, "\np99 of `Store.Get` at %d over %d: %.2f× (target ≤ 2×).\n", c.large, c.small, float64(large.get.p99)/float64(small.get.p99))
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
					AccessToken:    finchconnect.Secret(base64.RawURLEncoding.EncodeToString(tok)),
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

type lookupStats struct{ get, lookup latencies }

// measureLookups times k lookups of random stored connections, one at a
// time, with Store.Get (what the company page and the proxy do) and with
// Store.Lookup (metadata only).
func measureLookups(ctx context.Context, store *tokenstore.Store, stored, k int) (lookupStats, error) {
	rng := mrand.New(mrand.NewPCG(uint64(stored), 8)) // ids, not secrets: reproducible draws
	get := make([]time.Duration, 0, k)
	look := make([]time.Duration, 0, k)
	// A first pass warms the page cache and the connection pool, as a
	// running server's would be.
	for range min(k, 1000) {
		if _, err := store.Get(ctx, connectionID(rng.IntN(stored))); err != nil {
			return lookupStats{}, err
		}
	}
	for range k {
		id := connectionID(rng.IntN(stored))
		t0 := time.Now()
		c, err := store.Get(ctx, id)
		get = append(get, time.Since(t0))
		if err != nil || c.AccessToken == "" {
			return lookupStats{}, fmt.Errorf("get %s: %v", id, err)
		}
		id = connectionID(rng.IntN(stored))
		t0 = time.Now()
		_, err = store.Lookup(ctx, id)
		look = append(look, time.Since(t0))
		if err != nil {
			return lookupStats{}, fmt.Errorf("lookup %s: %w", id, err)
		}
	}
	return lookupStats{get: summarize(get), lookup: summarize(look)}, nil
}

func summarize(d []time.Duration) latencies {
	slices.Sort(d)
	at := func(p float64) time.Duration { return d[min(len(d)-1, max(0, int(math.Ceil(float64(len(d))*p))-1))] }
	return latencies{p50: at(0.50), p99: at(0.99), max: d[len(d)-1]}
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

// dbSize is the size of the database file and its write-ahead log.
func dbSize(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}
