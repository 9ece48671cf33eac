package keyring

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// KeySize is the length of an AES-256 key in bytes.
const KeySize = 32

// Key is one AES-256 key and its id. The id is not secret; the material is,
// and Key never prints it: String, GoString, Format, LogValue and MarshalJSON
// show the id only. [Key.Encode] is the one way the material leaves the type.
//
// The zero Key holds no material and is refused by [New].
type Key struct {
	// ID names the key in every value it seals. Ids start at 1 and must be
	// unique within a keyring.
	ID uint32

	// material returns the key bytes. It is a func rather than an array
	// or a pointer because fmt, reaching a Key through an unexported field
	// where it cannot call Format, prints it by reflection: an array or a
	// pointer to one would come out in full, a func only as an address.
	// Nil in the zero Key.
	material func() *[KeySize]byte
}

func withMaterial(id uint32, m *[KeySize]byte) Key {
	return Key{ID: id, material: func() *[KeySize]byte { return m }}
}

// Generate returns a new key with the given id and 32 bytes from
// crypto/rand.
func Generate(id uint32) (Key, error) {
	if id == 0 {
		return Key{}, errors.New("keyring: key id 0 is reserved; use 1 or more")
	}
	m := new([KeySize]byte)
	if _, err := rand.Read(m[:]); err != nil {
		return Key{}, fmt.Errorf("keyring: generate key: %v", err)
	}
	return withMaterial(id, m), nil
}

// NewKey returns a key with the given id and material, which must be 32
// bytes. It copies material.
func NewKey(id uint32, material []byte) (Key, error) {
	if id == 0 {
		return Key{}, errors.New("keyring: key id 0 is reserved; use 1 or more")
	}
	if len(material) != KeySize {
		return Key{}, fmt.Errorf("keyring: key %d is %d bytes, want %d", id, len(material), KeySize)
	}
	m := new([KeySize]byte)
	copy(m[:], material)
	return withMaterial(id, m), nil
}

// ParseKey parses one key written as ID:base64, the form [Key.Encode]
// returns. Errors never include the key material.
func ParseKey(s string) (Key, error) {
	k, err := parseKey(s)
	if err != nil {
		return Key{}, fmt.Errorf("keyring: %s", err)
	}
	return k, nil
}

// parseKey returns reasons without the package prefix, so that Parse can
// say which entry they are about.
func parseKey(s string) (Key, error) {
	idText, b64, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Key{}, errors.New("want ID:base64, found no ':'")
	}
	// Deliberately not strconv's error: it quotes its input, and a
	// mis-pasted entry may have key material where the id should be.
	id, err := strconv.ParseUint(strings.TrimSpace(idText), 10, 32)
	if err != nil || id == 0 {
		return Key{}, fmt.Errorf("key id is not a whole number from 1 to %d", uint32(1<<32-1))
	}
	b64 = strings.TrimSpace(b64)
	if b64 == "" {
		return Key{}, fmt.Errorf("key %d has no key material after ':'", id)
	}
	material, err := decodeBase64(b64)
	if err != nil {
		return Key{}, fmt.Errorf("key %d is not valid base64", id)
	}
	defer clear(material)
	if len(material) != KeySize {
		return Key{}, fmt.Errorf("key %d is %d bytes, want %d (generate one with `finchconnect keygen`)", id, len(material), KeySize)
	}
	return NewKey(uint32(id), material)
}

// decodeBase64 accepts standard and URL-safe base64, padded or not, since
// keys get pasted from many tools.
func decodeBase64(s string) ([]byte, error) {
	var firstErr error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.Strict().DecodeString(s)
		if err == nil {
			return b, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// Encode returns the key as ID:base64 (standard encoding, padded), the form
// [ParseKey], [Parse] and key files read. It is the one way key material
// leaves a Key; every call site hands out the secret, so keep them few (the
// keygen command and tests). The zero Key encodes as "".
func (k Key) Encode() string {
	if k.material == nil {
		return ""
	}
	return strconv.FormatUint(uint64(k.ID), 10) + ":" + base64.StdEncoding.EncodeToString(k.material()[:])
}

// String returns the key's id and a placeholder for its material.
func (k Key) String() string {
	return "keyring.Key{ID: " + strconv.FormatUint(uint64(k.ID), 10) + ", material: [redacted]}"
}

// GoString is String, for %#v.
func (k Key) GoString() string { return k.String() }

// Format makes every fmt verb print [Key.String], so %x or %+v cannot dump
// the material.
func (k Key) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", k.String())
		return
	}
	fmt.Fprint(f, k.String())
}

// LogValue implements [slog.LogValuer]: the id only.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.Uint64("id", uint64(k.ID)), slog.String("material", "[redacted]"))
}

// MarshalJSON writes {"id":N}; the material is never encoded.
func (k Key) MarshalJSON() ([]byte, error) {
	return []byte(`{"id":` + strconv.FormatUint(uint64(k.ID), 10) + `}`), nil
}
