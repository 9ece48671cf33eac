package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// Format1 is the first byte of every value sealed by this version of the
// package. A later format would get a new byte, and Open would keep reading
// this one.
const Format1 byte = 1

const (
	headerSize = 1 + 4 // format byte, key id
	nonceSize  = 12
	tagSize    = 16

	// Overhead is how many bytes Seal adds to a plaintext.
	Overhead = headerSize + nonceSize + tagSize
)

// ErrOpen means a sealed value could not be opened: it was changed, cut
// short, bound to other associated data, or sealed under a key this keyring
// does not hold. Errors from [Keyring.Open] wrap it and say which, without
// echoing any of the sealed bytes.
var ErrOpen = errors.New("keyring: cannot open sealed value")

// Keyring seals under its primary key and opens under any of its keys. It is
// immutable after [New] and safe for concurrent use. Rotating means building
// a new Keyring.
type Keyring struct {
	primary uint32
	ids     []uint32 // primary first, then the others in the order given

	// aead returns the AEAD for a key id. A func, not a map, for the same
	// reason as Key.material: fmt would print a map of AEADs by reflection,
	// down to the expanded AES key, when a Keyring sits in an unexported
	// field.
	aead func(id uint32) (cipher.AEAD, bool)
}

// New returns a keyring that seals under primary and opens under primary and
// every key in older. Key ids must be distinct, and every key must hold
// material (the zero Key does not).
func New(primary Key, older ...Key) (*Keyring, error) {
	keys := append([]Key{primary}, older...)
	aeads := make(map[uint32]cipher.AEAD, len(keys))
	kr := &Keyring{primary: primary.ID}
	for i, k := range keys {
		if k.material == nil || k.ID == 0 {
			return nil, fmt.Errorf("keyring: key %d of %d is empty (the zero Key); use Generate, NewKey or ParseKey", i+1, len(keys))
		}
		if _, dup := aeads[k.ID]; dup {
			return nil, fmt.Errorf("keyring: key id %d appears twice", k.ID)
		}
		block, err := aes.NewCipher(k.material()[:])
		if err != nil {
			return nil, fmt.Errorf("keyring: key %d: %v", k.ID, err)
		}
		// One AEAD per key, built once: it is safe for concurrent use, and
		// building it per call would redo the key schedule every time.
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			// Notably under GOEXPERIMENT=boringcrypto (golang/go#72016).
			return nil, fmt.Errorf("keyring: key %d: %v", k.ID, err)
		}
		aeads[k.ID] = aead
		kr.ids = append(kr.ids, k.ID)
	}
	kr.aead = func(id uint32) (cipher.AEAD, bool) {
		a, ok := aeads[id]
		return a, ok
	}
	return kr, nil
}

// PrimaryID returns the id of the key that seals.
func (kr *Keyring) PrimaryID() uint32 { return kr.primary }

// IDs returns the ids of every key, the primary first, then the older keys
// in the order they were given.
func (kr *Keyring) IDs() []uint32 { return append([]uint32(nil), kr.ids...) }

// Has reports whether the keyring holds a key with id.
func (kr *Keyring) Has(id uint32) bool {
	if kr == nil || kr.aead == nil {
		return false
	}
	_, ok := kr.aead(id)
	return ok
}

// Seal encrypts plaintext under the primary key, binding aad (which is not
// stored: Open needs the same aad). Each call draws a fresh random nonce, so
// sealing the same plaintext twice gives different values.
func (kr *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	if kr == nil || kr.aead == nil {
		return nil, errors.New("keyring: Seal on a nil or empty Keyring")
	}
	aead, _ := kr.aead(kr.primary)
	out := make([]byte, headerSize, Overhead+len(plaintext))
	out[0] = Format1
	binary.BigEndian.PutUint32(out[1:headerSize], kr.primary)
	return aead.Seal(out, nil, plaintext, boundAAD(out[:headerSize], aad)), nil
}

// Open decrypts a value that Seal returned, under whichever key sealed it.
// Any failure wraps [ErrOpen].
func (kr *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	if kr == nil || kr.aead == nil {
		return nil, errors.New("keyring: Open on a nil or empty Keyring")
	}
	if len(sealed) < Overhead {
		return nil, openError("too short")
	}
	if sealed[0] != Format1 {
		return nil, openError("unknown format " + strconv.Itoa(int(sealed[0])))
	}
	id := binary.BigEndian.Uint32(sealed[1:headerSize])
	aead, ok := kr.aead(id)
	if !ok {
		return nil, &MissingKeyError{KeyID: id}
	}
	plaintext, err := aead.Open(nil, nil, sealed[headerSize:], boundAAD(sealed[:headerSize], aad))
	if err != nil {
		// GCM's error says only "message authentication failed"; there is
		// nothing more to say without helping an attacker.
		return nil, openError("authentication failed under key " + strconv.FormatUint(uint64(id), 10))
	}
	return plaintext, nil
}

// boundAAD is the associated data GCM authenticates: the header, then the
// caller's aad. The header has a fixed length, so the two cannot be confused,
// and binding it means a changed format byte or key id fails the tag check
// instead of relying on the key lookup to notice.
func boundAAD(header, aad []byte) []byte {
	b := make([]byte, 0, len(header)+len(aad))
	return append(append(b, header...), aad...)
}

func openError(reason string) error { return fmt.Errorf("%w: %s", ErrOpen, reason) }

// MissingKeyError is the error of [Keyring.Open] for a value sealed under a
// key this keyring does not hold: the operator must add the key. It wraps
// [ErrOpen].
type MissingKeyError struct {
	KeyID uint32 // the id in the value's header
}

func (e *MissingKeyError) Error() string {
	return ErrOpen.Error() + ": key id " + strconv.FormatUint(uint64(e.KeyID), 10) + " is not in the keyring"
}

// Unwrap makes errors.Is(err, ErrOpen) hold.
func (e *MissingKeyError) Unwrap() error { return ErrOpen }

// KeyID returns the id of the key that sealed a value, read from its header
// without decrypting, or false if sealed is not a value in a known format.
// A true result does not mean the value opens.
func KeyID(sealed []byte) (uint32, bool) {
	if len(sealed) < Overhead || sealed[0] != Format1 {
		return 0, false
	}
	return binary.BigEndian.Uint32(sealed[1:headerSize]), true
}

// String describes the keyring by key ids only, e.g.
// "keyring(primary 2; keys 2,1)".
func (kr *Keyring) String() string {
	if kr == nil {
		return "keyring(nil)"
	}
	ids := make([]string, len(kr.ids))
	for i, id := range kr.ids {
		ids[i] = strconv.FormatUint(uint64(id), 10)
	}
	return "keyring(primary " + strconv.FormatUint(uint64(kr.primary), 10) + "; keys " + strings.Join(ids, ",") + ")"
}

// Format makes every fmt verb print [Keyring.String].
func (kr *Keyring) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", kr.String())
		return
	}
	fmt.Fprint(f, kr.String())
}

// LogValue implements [slog.LogValuer] with the key ids only.
func (kr *Keyring) LogValue() slog.Value {
	if kr == nil {
		return slog.StringValue("keyring(nil)")
	}
	return slog.GroupValue(slog.Uint64("primary", uint64(kr.primary)), slog.Any("keys", kr.IDs()))
}
