package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/finchconnect/finchconnect/keyring"
)

// keyCheckInterval is how often serve checks again that stored records
// open with its keys: another replica with other keys may have written
// some since.
const keyCheckInterval = 10 * time.Minute

// keyHealth is the outcome of the last key check, for /readyz.
type keyHealth struct {
	mu  sync.Mutex
	err error
}

func (h *keyHealth) set(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
}

func (h *keyHealth) get() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// checkKeysAtStart refuses to start when stored records name keys the
// keyring lacks, or do not open with its keys: every such connection would
// fail with a 500. -allow-degraded starts anyway, with /readyz failing.
func (a *app) checkKeysAtStart(ctx context.Context) error {
	rep, err := checkKeys(ctx, a.store, a.f.store.journalPath())
	if err != nil {
		return err
	}
	problem := rep.problem()
	if problem == nil {
		return nil
	}
	if !a.f.allowDegraded {
		return fmt.Errorf("%v, so finchconnect does not start: add the key that sealed them to -keys or -keys-file (FINCHCONNECT_KEYS, FINCHCONNECT_KEYS_FILE; "+
			"`finchconnect keys status` shows what is missing), or start anyway with -allow-degraded, and /readyz failing", problem)
	}
	a.logger.Error("starting degraded (-allow-degraded): stored records cannot be opened; /readyz fails until they can", "problem", problem.Error())
	a.keys.set(fmt.Errorf("stored records cannot be opened: %v", problem))
	return nil
}

// recheckKeys runs the key check again and updates /readyz.
func (a *app) recheckKeys(ctx context.Context) {
	rep, err := checkKeys(ctx, a.store, a.f.store.journalPath())
	if err != nil {
		if ctx.Err() == nil {
			a.logger.Warn("check the keys", "err", err)
		}
		return // the store's own health is /readyz's store check
	}
	problem := rep.problem()
	was := a.keys.get()
	switch {
	case problem != nil:
		a.keys.set(fmt.Errorf("stored records cannot be opened: %v", problem))
		a.logger.Error("stored records cannot be opened; /readyz fails until they can", "problem", problem.Error())
	case was != nil:
		a.keys.set(nil)
		a.logger.Info("every stored record's key is in the keyring again; /readyz is ok")
	}
}

func (a *app) keyCheckLoop(ctx context.Context) error {
	t := time.NewTicker(keyCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			a.recheckKeys(ctx)
		}
	}
}

// keyReloadLoop re-reads the key file at path when it changes (keys
// rotate), so rotation needs no restart, and checks the keys again.
func (a *app) keyReloadLoop(ctx context.Context, path string) error {
	stamp := fileStamp(path)
	t := time.NewTicker(a.f.keysReload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := fileStamp(path)
		if now == stamp {
			continue
		}
		kr, err := keyring.LoadFile(path)
		if err != nil {
			a.logger.Error("reload the key file; keeping the current keys", "err", err)
			continue
		}
		stamp = now
		a.store.SetKeyring(kr)
		a.logger.Info("reloaded the key file", "primary", kr.PrimaryID(), "keys", len(kr.IDs()))
		a.recheckKeys(ctx)
	}
}
