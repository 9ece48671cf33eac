package keyring_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/finchconnect/finchconnect/keyring"
	"github.com/google/go-cmp/cmp"
)

// fixedKey returns a key with deterministic material, so failures
// reproduce.
func fixedKey(t testing.TB, id uint32, fill byte) keyring.Key {
	t.Helper()
	k, err := keyring.NewKey(id, bytes.Repeat([]byte{fill}, keyring.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustNew(t testing.TB, primary keyring.Key, older ...keyring.Key) *keyring.Keyring {
	t.Helper()
	kr, err := keyring.New(primary, older...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func mustSeal(t testing.TB, kr *keyring.Keyring, plaintext, aad []byte) []byte {
	t.Helper()
	s, err := kr.Seal(plaintext, aad)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	token = []byte("a7c3e1d2-9b8f-4e6a-8c1d-2f3e4a5b6c7d-0123456789abcdef0123456789a") // 64 bytes
	aad   = []byte("finchconnect/connection/v1:conn-1")
)

func TestKeyring_SealOpen(t *testing.T) {
	kr := mustNew(t, fixedKey(t, 7, 0x11))
	tests := []struct {
		name           string
		plaintext, aad []byte
	}{
		{"token", token, aad},
		{"empty plaintext", []byte{}, aad},
		{"nil plaintext", nil, aad},
		{"nil aad", token, nil},
		{"all bytes", func() []byte {
			b := make([]byte, 256)
			for i := range b {
				b[i] = byte(i)
			}
			return b
		}(), []byte{0, 0xff}},
		{"1 MiB", bytes.Repeat([]byte("x"), 1<<20), aad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed := mustSeal(t, kr, tt.plaintext, tt.aad)
			if got, want := len(sealed), len(tt.plaintext)+keyring.Overhead; got != want {
				t.Errorf("len(Seal()) = %d, want %d", got, want)
			}
			if sealed[0] != keyring.Format1 {
				t.Errorf("Seal()[0] = %d, want format %d", sealed[0], keyring.Format1)
			}
			if id, ok := keyring.KeyID(sealed); !ok || id != 7 {
				t.Errorf("KeyID(Seal()) = %d, %v; want 7, true", id, ok)
			}
			if len(tt.plaintext) >= 16 && bytes.Contains(sealed, tt.plaintext[:16]) {
				t.Errorf("Seal() output contains the plaintext")
			}
			got, err := kr.Open(sealed, tt.aad)
			if err != nil {
				t.Fatalf("Open(Seal()) err = %v", err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Errorf("Open(Seal(x)) = %d bytes, want x (%d bytes)", len(got), len(tt.plaintext))
			}
		})
	}
}

func TestKeyring_Seal_freshNonce(t *testing.T) {
	kr := mustNew(t, fixedKey(t, 1, 1))
	seen := map[string]bool{}
	for range 2000 {
		s := mustSeal(t, kr, token, aad)
		nonce := string(s[5 : 5+12])
		if seen[nonce] {
			t.Fatalf("Seal repeated a nonce within 2000 calls")
		}
		seen[nonce] = true
	}
}

func TestKeyring_Open_bitFlips(t *testing.T) {
	kr := mustNew(t, fixedKey(t, 1, 1), fixedKey(t, 0x01000000, 1))
	sealed := mustSeal(t, kr, token, aad)
	for i := range len(sealed) * 8 {
		bad := bytes.Clone(sealed)
		bad[i/8] ^= 1 << (i % 8)
		if got, err := kr.Open(bad, aad); !errors.Is(err, keyring.ErrOpen) {
			t.Errorf("Open(sealed with bit %d flipped) = %q, %v; want ErrOpen", i, got, err)
		}
	}
}

func TestKeyring_Open_aadBitFlips(t *testing.T) {
	kr := mustNew(t, fixedKey(t, 1, 1))
	sealed := mustSeal(t, kr, token, aad)
	for i := range len(aad) * 8 {
		bad := bytes.Clone(aad)
		bad[i/8] ^= 1 << (i % 8)
		if _, err := kr.Open(sealed, bad); !errors.Is(err, keyring.ErrOpen) {
			t.Errorf("Open(aad with bit %d flipped) err = %v, want ErrOpen", i, err)
		}
	}
}

func TestKeyring_Open_wrongAAD(t *testing.T) {
	kr := mustNew(t, fixedKey(t, 1, 1))
	sealed := mustSeal(t, kr, token, aad)
	for _, other := range [][]byte{
		[]byte("finchconnect/connection/v1:conn-2"), // another record's
		[]byte("finchconnect/connection/v1:conn-"),  // a prefix
		append(bytes.Clone(aad), 0),                 // an extension
		nil,
	} {
		if _, err := kr.Open(sealed, other); !errors.Is(err, keyring.ErrOpen) {
			t.Errorf("Open(sealed, aad %q) err = %v, want ErrOpen", other, err)
		}
	}
	// And the reverse: a value sealed with no aad does not open with one.
	plain := mustSeal(t, kr, token, nil)
	if _, err := kr.Open(plain, aad); !errors.Is(err, keyring.ErrOpen) {
		t.Errorf("Open(sealed without aad, aad) err = %v, want ErrOpen", err)
	}
}

func TestKeyring_Open_truncations(t *testing.T) {
	kr := mustNew(t, fixedKey(t, 1, 1))
	sealed := mustSeal(t, kr, token, aad)
	for n := range len(sealed) {
		if _, err := kr.Open(sealed[:n], aad); !errors.Is(err, keyring.ErrOpen) {
			t.Errorf("Open(first %d of %d bytes) err = %v, want ErrOpen", n, len(sealed), err)
		}
		if _, err := kr.Open(sealed[n+1:], aad); !errors.Is(err, keyring.ErrOpen) {
			t.Errorf("Open(sealed without its first %d bytes) err = %v, want ErrOpen", n+1, err)
		}
	}
	if _, err := kr.Open(append(bytes.Clone(sealed), 0), aad); !errors.Is(err, keyring.ErrOpen) {
		t.Errorf("Open(sealed + 1 byte) err = %v, want ErrOpen", err)
	}
}

func TestKeyring_rotation(t *testing.T) {
	k1, k2, k3 := fixedKey(t, 1, 0xa1), fixedKey(t, 2, 0xa2), fixedKey(t, 3, 0xa3)
	old := mustNew(t, k1)
	oldSealed := mustSeal(t, old, token, aad)

	rotated := mustNew(t, k2, k1)
	if got := rotated.PrimaryID(); got != 2 {
		t.Errorf("PrimaryID() = %d, want 2", got)
	}
	if diff := cmp.Diff([]uint32{2, 1}, rotated.IDs()); diff != "" {
		t.Errorf("IDs() mismatch (-want +got):\n%s", diff)
	}
	if got, err := rotated.Open(oldSealed, aad); err != nil || !bytes.Equal(got, token) {
		t.Errorf("rotated.Open(sealed under the old key) = %q, %v; want the token", got, err)
	}
	newSealed := mustSeal(t, rotated, token, aad)
	if id, _ := keyring.KeyID(newSealed); id != 2 {
		t.Errorf("KeyID(sealed after rotation) = %d, want 2", id)
	}

	// A keyring without key 1 cannot open what key 1 sealed.
	retired := mustNew(t, k3, k2)
	_, err := retired.Open(oldSealed, aad)
	if !errors.Is(err, keyring.ErrOpen) || !strings.Contains(err.Error(), "key id 1 is not in the keyring") {
		t.Errorf("retired.Open(sealed under dropped key 1) err = %v, want ErrOpen naming key id 1", err)
	}
	if got, err := retired.Open(newSealed, aad); err != nil || !bytes.Equal(got, token) {
		t.Errorf("retired.Open(sealed under key 2) = %q, %v; want the token", got, err)
	}
	// The old keyring does not know key 2.
	if _, err := old.Open(newSealed, aad); !errors.Is(err, keyring.ErrOpen) {
		t.Errorf("old.Open(sealed under key 2) err = %v, want ErrOpen", err)
	}
}

func TestKeyring_Open_sameIDOtherMaterial(t *testing.T) {
	a := mustNew(t, fixedKey(t, 1, 0x01))
	b := mustNew(t, fixedKey(t, 1, 0x02))
	_, err := b.Open(mustSeal(t, a, token, aad), aad)
	if !errors.Is(err, keyring.ErrOpen) {
		t.Errorf("Open under a different key with the same id err = %v, want ErrOpen", err)
	}
}

func TestKeyring_Open_errorNamesNoBytes(t *testing.T) {
	kr := mustNew(t, fixedKey(t, 1, 1))
	sealed := mustSeal(t, kr, token, aad)
	sealed[len(sealed)-1] ^= 1
	_, err := kr.Open(sealed, aad)
	if err == nil {
		t.Fatal("Open(tampered) err = nil")
	}
	msg := err.Error()
	for _, leak := range []string{string(token), hex.EncodeToString(sealed[5:]), base64.StdEncoding.EncodeToString(sealed), string(aad)} {
		if strings.Contains(msg, leak) {
			t.Errorf("Open error %q contains sealed, plaintext or aad bytes", msg)
		}
	}
}

func TestKeyring_Open_formats(t *testing.T) {
	kr := mustNew(t, fixedKey(t, 1, 1))
	sealed := mustSeal(t, kr, token, aad)
	for _, f := range []byte{0, 2, 0xff} {
		bad := bytes.Clone(sealed)
		bad[0] = f
		if _, err := kr.Open(bad, aad); !errors.Is(err, keyring.ErrOpen) {
			t.Errorf("Open(format %d) err = %v, want ErrOpen", f, err)
		}
		if _, ok := keyring.KeyID(bad); ok {
			t.Errorf("KeyID(format %d) ok = true, want false", f)
		}
	}
}

func TestKeyID(t *testing.T) {
	kr := mustNew(t, fixedKey(t, 0xdeadbeef, 1))
	sealed := mustSeal(t, kr, nil, nil)
	tests := []struct {
		name   string
		in     []byte
		wantID uint32
		wantOK bool
	}{
		{"sealed", sealed, 0xdeadbeef, true},
		{"nil", nil, 0, false},
		{"header only", sealed[:5], 0, false},
		{"one short", sealed[:len(sealed)-1], 0, false},
	}
	for _, tt := range tests {
		id, ok := keyring.KeyID(tt.in)
		if id != tt.wantID || ok != tt.wantOK {
			t.Errorf("KeyID(%s) = %d, %v; want %d, %v", tt.name, id, ok, tt.wantID, tt.wantOK)
		}
	}
}

func TestNew_errors(t *testing.T) {
	k1 := fixedKey(t, 1, 1)
	tests := []struct {
		name    string
		primary keyring.Key
		older   []keyring.Key
		want    string
	}{
		{"zero primary", keyring.Key{}, nil, "key 1 of 1 is empty"},
		{"zero older", k1, []keyring.Key{{ID: 5}}, "key 2 of 2 is empty"},
		{"duplicate id", k1, []keyring.Key{fixedKey(t, 2, 2), fixedKey(t, 1, 3)}, "key id 1 appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := keyring.New(tt.primary, tt.older...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New() = %v, %v; want error containing %q", kr, err, tt.want)
			}
		})
	}
}

func TestKeyring_nil(t *testing.T) {
	var kr *keyring.Keyring
	if _, err := kr.Seal(token, aad); err == nil {
		t.Error("nil Keyring Seal err = nil, want an error")
	}
	if _, err := kr.Open(make([]byte, 64), aad); err == nil {
		t.Error("nil Keyring Open err = nil, want an error")
	}
}

func TestGenerate(t *testing.T) {
	a, err := keyring.Generate(1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := keyring.Generate(1)
	if err != nil {
		t.Fatal(err)
	}
	if a.Encode() == b.Encode() {
		t.Error("two Generate calls returned the same material")
	}
	if a.ID != 1 {
		t.Errorf("Generate(1).ID = %d, want 1", a.ID)
	}
	if _, err := keyring.Generate(0); err == nil {
		t.Error("Generate(0) err = nil, want an error (id 0 is reserved)")
	}
	// A generated key seals.
	kr := mustNew(t, a)
	if got, err := kr.Open(mustSeal(t, kr, token, aad), aad); err != nil || !bytes.Equal(got, token) {
		t.Errorf("round trip under a generated key = %q, %v", got, err)
	}
}

func TestKey_EncodeParseKey(t *testing.T) {
	k, err := keyring.Generate(4242)
	if err != nil {
		t.Fatal(err)
	}
	enc := k.Encode()
	if !strings.HasPrefix(enc, "4242:") || len(enc) != len("4242:")+44 {
		t.Errorf("Encode() = %d chars with prefix %q, want 4242: + 44 base64 chars", len(enc), enc[:5])
	}
	back, err := keyring.ParseKey(enc)
	if err != nil {
		t.Fatalf("ParseKey(Encode()) err = %v", err)
	}
	if back.Encode() != enc || back.ID != 4242 {
		t.Errorf("ParseKey(Encode()) does not give the key back")
	}
	// Same material: what one seals, the other opens.
	if _, err := mustNew(t, back).Open(mustSeal(t, mustNew(t, k), token, aad), aad); err != nil {
		t.Errorf("a key parsed from Encode() cannot open what the original sealed: %v", err)
	}
}

// material32 is 32 bytes whose base64 is easy to search for in output.
var material32 = []byte("0123456789abcdef0123456789ABCDEF")

func TestKey_redacts(t *testing.T) {
	k, err := keyring.NewKey(9, material32)
	if err != nil {
		t.Fatal(err)
	}
	kr := mustNew(t, k)
	secrets := []string{
		base64.StdEncoding.EncodeToString(material32),
		base64.RawURLEncoding.EncodeToString(material32),
		string(material32),
		hex.EncodeToString(material32),
		strings.ToUpper(hex.EncodeToString(material32)),
		fmt.Sprint(material32), // [48 49 50 …]
	}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
		outs = append(outs, fmt.Sprintf(verb, k), fmt.Sprintf(verb, &k), fmt.Sprintf(verb, kr),
			fmt.Sprintf(verb, struct{ K keyring.Key }{k}), fmt.Sprintf(verb, []keyring.Key{k}))
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("m", "key", k, "keyring", kr)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("m", "key", k, "keyring", kr)
	outs = append(outs, logs.String())
	j, err := json.Marshal(map[string]any{"k": k, "kr": kr, "ks": []keyring.Key{k}})
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	for _, out := range outs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("output %q contains the key material", out)
			}
		}
	}
	if got, want := k.String(), "keyring.Key{ID: 9, material: [redacted]}"; got != want {
		t.Errorf("Key.String() = %q, want %q", got, want)
	}
	if !strings.Contains(logs.String(), `"id":9`) {
		t.Errorf("slog output %q does not carry the key id", logs.String())
	}
	if got := string(j); !strings.Contains(got, `"k":{"id":9}`) {
		t.Errorf("json.Marshal(Key) = %s, want {\"id\":9}", got)
	}
}

// A Key reached through an unexported field cannot have its methods called
// by fmt, which then prints it by reflection.
func TestKey_redactsInUnexportedField(t *testing.T) {
	k, err := keyring.NewKey(9, material32)
	if err != nil {
		t.Fatal(err)
	}
	kr := mustNew(t, k)
	holders := []any{
		struct{ key keyring.Key }{k},
		struct{ keys []keyring.Key }{[]keyring.Key{k}},
		struct{ kr *keyring.Keyring }{kr},
		struct{ kr keyring.Keyring }{*kr},
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%X", "%s", "%d", "%q"} {
		var out string
		for _, h := range holders {
			out += fmt.Sprintf(verb, h)
		}
		if strings.Contains(out, fmt.Sprint(material32[:8])[1:12]) || strings.Contains(out, string(material32[:12])) ||
			strings.Contains(out, fmt.Sprintf("%x", material32[:8])) || strings.Contains(out, fmt.Sprintf("%X", material32[:8])) {
			t.Errorf("Sprintf(%s, structs holding a Key or Keyring unexported) = %q leaks the material", verb, out)
		}
	}
}

func TestKeyring_String(t *testing.T) {
	kr := mustNew(t, fixedKey(t, 3, 1), fixedKey(t, 1, 2), fixedKey(t, 2, 3))
	want := "keyring(primary 3; keys 3,1,2)"
	for _, got := range []string{kr.String(), fmt.Sprint(kr), fmt.Sprintf("%+v", kr), fmt.Sprintf("%#v", kr)} {
		if got != want {
			t.Errorf("printed keyring = %q, want %q", got, want)
		}
	}
}

func TestKeyring_concurrent(t *testing.T) {
	kr := mustNew(t, fixedKey(t, 2, 2), fixedKey(t, 1, 1))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			a := []byte(fmt.Sprintf("aad-%d", g))
			for range 200 {
				s, err := kr.Seal(token, a)
				if err == nil {
					_, err = kr.Open(s, a)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Seal/Open err = %v", err)
	}
}

// encode is Key.Encode for a fill byte, for building test inputs.
func encode(id uint32, fill byte) string {
	return fmt.Sprintf("%d:%s", id, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{fill}, 32)))
}

func TestParse(t *testing.T) {
	k1, k2, k3 := encode(1, 1), encode(2, 2), encode(3, 3)
	raw := "7:" + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32))
	tests := []struct {
		name        string
		in          string
		wantPrimary uint32
		wantIDs     []uint32
	}{
		{"one", k1, 1, []uint32{1}},
		{"commas, primary first", k2 + "," + k1, 2, []uint32{2, 1}},
		{"spaces", "  " + k2 + " , " + k1 + " ,", 2, []uint32{2, 1}},
		{"newlines and comments", "# keys\n" + k3 + "  # new primary\n\n" + k2 + "\r\n" + k1 + "\n", 3, []uint32{3, 2, 1}},
		{"mixed separators", k3 + "," + k2 + "\n" + k1, 3, []uint32{3, 2, 1}},
		{"url-safe unpadded base64", raw, 7, []uint32{7}},
		{"space around colon", "5 : " + encode(5, 5)[2:], 5, []uint32{5}},
		{"max id", encode(4294967295, 9), 4294967295, []uint32{4294967295}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := keyring.Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse() err = %v", err)
			}
			if kr.PrimaryID() != tt.wantPrimary {
				t.Errorf("PrimaryID() = %d, want %d", kr.PrimaryID(), tt.wantPrimary)
			}
			if diff := cmp.Diff(tt.wantIDs, kr.IDs()); diff != "" {
				t.Errorf("IDs() mismatch (-want +got):\n%s", diff)
			}
		})
	}
	// Parse and New agree on the material: Parse(k1) opens New(fixed 1).
	kr, _ := keyring.Parse(k2 + "," + k1)
	if _, err := kr.Open(mustSeal(t, mustNew(t, fixedKey(t, 1, 1)), token, aad), aad); err != nil {
		t.Errorf("Parse(%q…) cannot open what key 1 sealed: %v", "2:…,1:…", err)
	}
}

func TestParse_errors(t *testing.T) {
	good := encode(1, 1)
	b64 := good[2:]
	short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 31))
	long := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 33))
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", "no keys given"},
		{"only comments", "# nothing\n  \n", "no keys given"},
		{"only commas", ",,", "no keys given"},
		{"no colon", b64, "entry 1: want ID:base64, found no ':'"},
		{"no id", ":" + b64, "entry 1: key id is not a whole number"},
		{"id not a number", "k1:" + b64, "entry 1: key id is not a whole number"},
		{"id zero", "0:" + b64, "entry 1: key id is not a whole number from 1"},
		{"negative id", "-1:" + b64, "entry 1: key id is not"},
		{"id too large", "4294967296:" + b64, "entry 1: key id is not"},
		{"no material", "1:", "entry 1: key 1 has no key material"},
		{"bad base64", "1:" + strings.Repeat("!", 44), "entry 1: key 1 is not valid base64"},
		{"31 bytes", "1:" + short, "entry 1: key 1 is 31 bytes, want 32"},
		{"33 bytes", "1:" + long, "entry 1: key 1 is 33 bytes, want 32"},
		{"second entry bad", good + ",2:" + short, "entry 2: key 2 is 31 bytes"},
		{"duplicate", good + "," + encode(2, 2) + "," + encode(1, 3), "entry 3: key id 1 appears twice"},
		{"line number", "# c\n" + good + "\n\n2:" + short, "entry 2 (line 4): key 2 is 31 bytes"},
		{"material pasted without id", b64 + b64, "want ID:base64"},
		{"key pasted as id", b64 + ":" + b64, "key id is not a whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := keyring.Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%s) = %v, want an error containing %q", tt.name, kr, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "keyring: ") {
				t.Errorf("Parse(%s) err = %q, want it to start keyring: and contain %q", tt.name, err, tt.want)
			}
			for _, m := range []string{b64, short, long, b64[:12]} {
				if strings.Contains(err.Error(), m) {
					t.Errorf("Parse(%s) err = %q echoes key material", tt.name, err)
				}
			}
		})
	}
}

func writeFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is filtered by the umask; set it exactly.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadFile(t *testing.T) {
	content := "# finchconnect keys, primary first\n" + encode(2, 2) + "\n" + encode(1, 1) + "  # retired soon\n"
	t.Run("OK", func(t *testing.T) {
		for _, mode := range []os.FileMode{0o600, 0o400} {
			kr, err := keyring.LoadFile(writeFile(t, content, mode))
			if err != nil {
				t.Fatalf("LoadFile(mode %04o) err = %v", mode, err)
			}
			if diff := cmp.Diff([]uint32{2, 1}, kr.IDs()); diff != "" {
				t.Errorf("LoadFile().IDs() mismatch (-want +got):\n%s", diff)
			}
		}
	})
	t.Run("ErrPermissions", func(t *testing.T) {
		for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620, 0o602, 0o666} {
			path := writeFile(t, content, mode)
			_, err := keyring.LoadFile(path)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("mode %04o", mode)) || !strings.Contains(err.Error(), "chmod 600") {
				t.Errorf("LoadFile(mode %04o) err = %v, want a refusal naming the mode and chmod 600", mode, err)
			}
		}
	})
	t.Run("ErrMissing", func(t *testing.T) {
		_, err := keyring.LoadFile(filepath.Join(t.TempDir(), "nope"))
		if !errors.Is(err, os.ErrNotExist) && (err == nil || !strings.Contains(err.Error(), "no such file")) {
			t.Errorf("LoadFile(missing) err = %v, want not-exist", err)
		}
	})
	t.Run("ErrDirectory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := keyring.LoadFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("LoadFile(dir) err = %v, want not a regular file", err)
		}
	})
	t.Run("ErrBadEntry", func(t *testing.T) {
		path := writeFile(t, encode(2, 2)+"\n1:AAAA\n", 0o600)
		_, err := keyring.LoadFile(path)
		if err == nil || !strings.Contains(err.Error(), "entry 2 (line 2): key 1 is 3 bytes") || !strings.Contains(err.Error(), path) {
			t.Errorf("LoadFile(bad second line) err = %v, want entry 2 (line 2) and the path", err)
		}
	})
	t.Run("ErrTooLarge", func(t *testing.T) {
		path := writeFile(t, encode(1, 1)+"\n"+strings.Repeat("#", 70<<10), 0o600)
		if _, err := keyring.LoadFile(path); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("LoadFile(70 KiB) err = %v, want too large", err)
		}
	})
}
