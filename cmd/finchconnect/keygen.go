package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/finchconnect/finchconnect/keyring"
)

// runKeygen prints a new AES-256 key as ID:base64, the form -keys and key
// files take. It prints to stdout only, so it can be redirected into a file
// or a secret manager.
func runKeygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	id := fs.Uint("id", 1, "key id: a number that no other key of this vault uses")
	if err := parseFlags(fs, args, func(string) string { return "" }, stderr); err != nil {
		return handleParseError(err, fs, stdout, stderr, "finchconnect keygen [-id N]")
	}
	if *id == 0 || *id > 1<<32-1 {
		return fmt.Errorf("keygen: -id must be between 1 and %d", uint32(1<<32-1))
	}
	key, err := keyring.Generate(uint32(*id))
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, key.Encode())
	return nil
}
