package keyring

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// maxFileSize bounds what LoadFile reads; a key file holds a few lines.
const maxFileSize = 64 << 10

// Parse reads a list of keys written as ID:base64, separated by commas or
// newlines, as -keys and FINCHCONNECT_KEYS take them. The FIRST key is the
// primary; the rest only open. Blank entries are skipped and '#' starts a
// comment that runs to the end of the line.
//
// An error names the entry (and line) at fault and why, never the key
// material.
func Parse(s string) (*Keyring, error) {
	var keys []Key
	n := 0
	for lineNo, line := range strings.Split(s, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for field := range strings.SplitSeq(line, ",") {
			if strings.TrimSpace(field) == "" {
				continue
			}
			n++
			k, err := parseKey(field)
			if err != nil {
				return nil, fmt.Errorf("keyring: %s: %s", where(n, lineNo+1, s), err)
			}
			for _, prev := range keys {
				if prev.ID == k.ID {
					return nil, fmt.Errorf("keyring: %s: key id %d appears twice", where(n, lineNo+1, s), k.ID)
				}
			}
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("keyring: no keys given (want ID:base64, primary first; `finchconnect keygen` prints one)")
	}
	return New(keys[0], keys[1:]...)
}

// where names an entry; the line number only helps when there are lines.
func where(entry, line int, s string) string {
	if strings.Contains(s, "\n") {
		return fmt.Sprintf("entry %d (line %d)", entry, line)
	}
	return fmt.Sprintf("entry %d", entry)
}

// LoadFile reads a key file in the syntax of [Parse]: typically one
// ID:base64 per line, the primary first, with '#' comments. It refuses a
// file that its group or others may read or write, since anyone who reads it
// can open every token in the vault.
func LoadFile(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %v", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the check and the read see the
	// same file.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keyring: %v", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keyring: key file %s is not a regular file", path)
	}
	// Windows has no Unix permission bits; os reports a fixed mode there.
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("keyring: key file %s has mode %04o, which lets its group or others read or write it; run chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("keyring: read key file %s: %v", path, err)
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("keyring: key file %s is larger than %d bytes", path, maxFileSize)
	}
	defer clear(b)
	kr, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return kr, nil
}
