package records

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Kind is the kind of a record: one Finch entity type.
type Kind string

// The kinds of record a connection can hold.
const (
	Company      Kind = "company"
	Directory    Kind = "directory"
	Individual   Kind = "individual"
	Employment   Kind = "employment"
	Payment      Kind = "payment"
	PayStatement Kind = "pay_statement"
	Benefit      Kind = "benefit"
	Enrollment   Kind = "enrollment"
	Document     Kind = "document"
)

// Item is one record as fetched: its kind, Finch's id for it, and its JSON
// body.
type Item struct {
	Kind Kind
	ID   string
	Body json.RawMessage
}

// Op is what a change did to a record.
type Op string

// The operations of the change feed.
const (
	Added    Op = "added"
	Modified Op = "modified"
	Removed  Op = "removed"
)

// Errors of the store.
var (
	// ErrNotFound: no such record, or the connection was shredded.
	ErrNotFound = errors.New("records: not found")
	// ErrIncomplete: Commit was called while a product's listing is not done.
	ErrIncomplete = errors.New("records: sync incomplete")
	// ErrClosed: the sync run was committed or abandoned.
	ErrClosed = errors.New("records: sync run closed")
	// ErrBadCursor: a cursor that Changes did not return.
	ErrBadCursor = errors.New("records: bad cursor")
)

// Canonical returns body's canonical JSON: decoded and re-encoded, so
// object keys are sorted and insignificant space is gone; numbers keep
// their text (1.0 and 1 differ), as Finch sends them.
func Canonical(body []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("records: body is not JSON: %v", err)
	}
	if d.More() {
		return nil, errors.New("records: body has trailing data")
	}
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, fmt.Errorf("records: %v", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// dataKey is a connection's unsealed data key, ready to seal, open and MAC.
type dataKey struct {
	aead    cipher.AEAD
	hashKey []byte
}

const dataKeySize = 32

func newDataKeyMaterial() []byte {
	k := make([]byte, dataKeySize)
	rand.Read(k) // never fails (crypto/rand)
	return k
}

func openDataKey(material []byte) (*dataKey, error) {
	if len(material) != dataKeySize {
		return nil, errors.New("records: data key has the wrong size")
	}
	block, err := aes.NewCipher(material)
	if err != nil {
		return nil, fmt.Errorf("records: %v", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("records: %v", err)
	}
	m := hmac.New(sha256.New, material)
	m.Write([]byte("finchconnect/records content mac v1"))
	return &dataKey{aead: aead, hashKey: m.Sum(nil)}, nil
}

// mac is the content MAC of a canonical body.
func (k *dataKey) mac(canonical []byte) []byte {
	m := hmac.New(sha256.New, k.hashKey)
	m.Write(canonical)
	return m.Sum(nil)
}

// recordAAD binds a sealed body to its row.
func recordAAD(conn string, kind Kind, id string) []byte {
	return lengthPrefixed("finchconnect/records/record", conn, string(kind), id)
}

// dataKeyAAD binds a sealed data key to its connection.
func dataKeyAAD(conn string) []byte {
	return lengthPrefixed("finchconnect/records/datakey", conn)
}

func lengthPrefixed(parts ...string) []byte {
	var b []byte
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}
