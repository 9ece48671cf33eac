package keyring_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/finchconnect/finchconnect/keyring"
)

// FuzzOpen checks that Open never panics on arbitrary input, that
// Open(Seal(x)) == x, and that flipping any one bit makes Open fail.
func FuzzOpen(f *testing.F) {
	kr := mustNew(f, fixedKey(f, 2, 0x42), fixedKey(f, 1, 0x41))
	old := mustNew(f, fixedKey(f, 1, 0x41))
	f.Add([]byte("token"), []byte("finchconnect/connection/v1:c1"), []byte{}, uint(0))
	f.Add([]byte{}, []byte{}, []byte{1, 0, 0, 0, 2}, uint(3))
	f.Add(bytes.Repeat([]byte{0xff}, 100), []byte("x"), mustSeal(f, old, []byte("old"), []byte("x")), uint(1000))
	f.Add([]byte("t"), []byte(nil), bytes.Repeat([]byte{1}, keyring.Overhead), uint(7))
	f.Fuzz(func(t *testing.T, plaintext, aad, junk []byte, bit uint) {
		// Arbitrary bytes: no panic, and only an ErrOpen.
		if got, err := kr.Open(junk, aad); err == nil {
			// Only a value really sealed under one of the keys may open; the
			// seeds include one sealed under key 1.
			if id, ok := keyring.KeyID(junk); !ok || !kr.Has(id) {
				t.Fatalf("Open(junk) = %q, nil for a value no key sealed", got)
			}
		} else if !errors.Is(err, keyring.ErrOpen) {
			t.Fatalf("Open(junk) err = %v, want ErrOpen", err)
		}

		sealed, err := kr.Seal(plaintext, aad)
		if err != nil {
			t.Fatal(err)
		}
		got, err := kr.Open(sealed, aad)
		if err != nil || !bytes.Equal(got, plaintext) {
			t.Fatalf("Open(Seal(x)) = %q, %v; want x", got, err)
		}
		i := bit % uint(len(sealed)*8)
		sealed[i/8] ^= 1 << (i % 8)
		if _, err := kr.Open(sealed, aad); !errors.Is(err, keyring.ErrOpen) {
			t.Fatalf("Open(sealed with bit %d flipped) err = %v, want ErrOpen", i, err)
		}
		sealed[i/8] ^= 1 << (i % 8)
		if len(aad) > 0 {
			j := bit % uint(len(aad)*8)
			bad := bytes.Clone(aad)
			bad[j/8] ^= 1 << (j % 8)
			if _, err := kr.Open(sealed, bad); !errors.Is(err, keyring.ErrOpen) {
				t.Fatalf("Open(aad with bit %d flipped) err = %v, want ErrOpen", j, err)
			}
		}
	})
}

// FuzzParse checks that Parse never panics, that a keyring it returns is
// consistent, and that its errors never echo anything that looks like key
// material from the input.
func FuzzParse(f *testing.F) {
	k1 := "1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	k2 := "2:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	for _, s := range []string{
		k1, k2 + "," + k1, "# c\n" + k2 + "\n" + k1 + " # old\n", "", ",", "1:", ":", "0:AAAA",
		k1 + "," + k1, "1:" + strings.Repeat("A", 43), "x:y:z", "4294967296:" + k1[2:], "\n\n#\n",
		k1[2:], "1:" + k1[2:] + "=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kr, err := keyring.Parse(s)
		if err != nil {
			if kr != nil {
				t.Fatalf("Parse() = %v, %v; want nil keyring with an error", kr, err)
			}
			if !strings.HasPrefix(err.Error(), "keyring: ") {
				t.Fatalf("Parse() err = %q, want the keyring: prefix", err)
			}
			// Anything long enough to be (part of) key material must not come
			// back in the message.
			for tok := range strings.FieldsFuncSeq(s, func(r rune) bool { return strings.ContainsRune(",:#\n\r\t ", r) }) {
				if len(tok) >= 12 && strings.Contains(err.Error(), tok) {
					t.Fatalf("Parse() err = %q echoes input %q", err, tok)
				}
			}
			return
		}
		ids := kr.IDs()
		if len(ids) == 0 || ids[0] != kr.PrimaryID() {
			t.Fatalf("Parse() IDs() = %v, PrimaryID() = %d; want the primary first", ids, kr.PrimaryID())
		}
		seen := map[uint32]bool{}
		for _, id := range ids {
			if id == 0 || seen[id] {
				t.Fatalf("Parse() IDs() = %v: zero or duplicate id", ids)
			}
			seen[id] = true
		}
		sealed, err := kr.Seal([]byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := kr.Open(sealed, nil); err != nil || string(got) != "x" {
			t.Fatalf("round trip under a parsed keyring = %q, %v", got, err)
		}
	})
}
