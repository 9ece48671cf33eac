package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"slices"

	"github.com/finchconnect/finchconnect/keyring"
)

// keygenCmd prints a new AES-256 key as ID:base64, the form -keys and key
// files take. It prints to stdout only, so it can be redirected into a file
// or a secret manager. Given the current keys (-keys-file, -keys, or their
// variables), it picks an id none of them uses, and refuses an -id in use:
// two keys with one id would leave records that no keyring opens.
type keygenCmd struct {
	id uint
	sf storeFlags
}

func (*keygenCmd) spec() cmdSpec {
	return cmdSpec{name: "keygen", env: sharedEnv,
		summary: "Print a new encryption key, ID:base64, with an id the current keys do not use.",
		detail: "Give it the current keys (-keys-file F, or FINCHCONNECT_KEYS / FINCHCONNECT_KEYS_FILE in the\n" +
			"environment) and the new key gets the next free id; without them it is id 1. Keep keys in a\n" +
			"file (mode 0600) or a secret manager, not in a shell variable:\n" +
			"  finchconnect keygen > /etc/finchconnect/keys && chmod 600 /etc/finchconnect/keys"}
}

func (k *keygenCmd) flags(fs *flag.FlagSet) {
	fs.UintVar(&k.id, "id", 0, "key id (default: one more than the highest current key's, or 1)")
	fs.StringVar(&k.sf.keys, "keys", "", "the current keys, ID:base64 comma-separated, so that the new id is unused")
	fs.StringVar(&k.sf.keysFile, "keys-file", "", "the current key file, so that the new id is unused")
}

func (k *keygenCmd) run(_ context.Context, c *cli, _ []string) error {
	if k.id > math.MaxUint32 {
		return fmt.Errorf("-id must be between 1 and %d", uint32(math.MaxUint32))
	}
	var used []uint32
	if k.sf.keys != "" || k.sf.keysFile != "" {
		k.sf.demoKey = demoKeyRefuse
		kr, err := k.sf.keyring(c.stderr)
		if err != nil {
			return err
		}
		used = kr.IDs()
	}
	id := uint32(k.id)
	switch {
	case id == 0 && len(used) > 0:
		id = slices.Max(used) + 1
	case id == 0:
		id = 1
	case slices.Contains(used, id):
		return fmt.Errorf("key id %d is already in use (the current keys are %s): omit -id to get the next free one", id, joinIDs(used))
	}
	if id == 0 { // the current keys' highest id was the largest there is
		return fmt.Errorf("no key id is left after %d: give a free one with -id", slices.Max(used))
	}
	key, err := keyring.Generate(id)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, key.Encode())
	return nil
}
