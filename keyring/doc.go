// Package keyring seals and opens small secrets with AES-256-GCM under
// rotating keys.
//
// A [Keyring] holds one primary [Key], which seals, and any number of older
// keys, which only open. Every sealed value starts with a format byte and the
// id of the key that sealed it, so a keyring opens values sealed under any
// key it holds, and keys rotate without a flag day: make a new key the
// primary, keep the old ones, re-seal at leisure, then drop a key once
// nothing is sealed under it.
//
// The sealed format (version 1) is
//
//	0x01 | key id (4 bytes, big endian) | nonce (12) | ciphertext | tag (16)
//
// The caller's associated data is bound into the tag together with the
// 5-byte header, so a value copied to another record, a changed key id and
// a changed format byte all fail to open. Seal adds 33 bytes to the
// plaintext.
//
// Nonces are 96 bits from crypto/rand, chosen by
// [crypto/cipher.NewGCMWithRandomNonce]. Random nonces make a collision, and
// with it the loss of confidentiality and integrity for the key, likely after
// about 2^48 messages; NIST SP 800-38D therefore caps a key at 2^32 sealed
// messages. Rotate a key well before it seals 2^32 values (four billion token
// writes is far beyond finchconnect's use, but the limit is per key, for the
// key's whole life).
//
// Caveat: under GOEXPERIMENT=boringcrypto, NewGCMWithRandomNonce returns an
// error (golang/go#72016), so [New] fails and nothing can be sealed; build
// without boringcrypto.
//
// Key material never leaves a [Key] except through [Key.Encode]: Key and
// Keyring print, log and marshal as key ids only.
package keyring
