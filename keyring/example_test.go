package keyring_test

import (
	"fmt"

	"github.com/finchconnect/finchconnect/keyring"
)

func Example() {
	oldKey, _ := keyring.Generate(1)
	kr, _ := keyring.New(oldKey)
	aad := []byte("finchconnect/connection/v1:conn-1")
	sealed, _ := kr.Seal([]byte("the access token"), aad)

	// Rotation: a new primary key, the old one kept for reading.
	newKey, _ := keyring.Generate(2)
	rotated, _ := keyring.New(newKey, oldKey)
	plaintext, err := rotated.Open(sealed, aad)
	id, _ := keyring.KeyID(sealed)
	fmt.Println(string(plaintext), err, id)
	fmt.Println(rotated)

	// Another record's associated data does not open it.
	_, err = rotated.Open(sealed, []byte("finchconnect/connection/v1:conn-2"))
	fmt.Println(err)
	// Output:
	// the access token <nil> 1
	// keyring(primary 2; keys 2,1)
	// keyring: cannot open sealed value: authentication failed under key 1
}
