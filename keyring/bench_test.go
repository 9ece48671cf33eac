package keyring_test

import "testing"

func BenchmarkSeal(b *testing.B) {
	kr := mustNew(b, fixedKey(b, 1, 1))
	b.SetBytes(int64(len(token)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Seal(token, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	kr := mustNew(b, fixedKey(b, 1, 1))
	sealed := mustSeal(b, kr, token, aad)
	b.SetBytes(int64(len(token)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Open(sealed, aad); err != nil {
			b.Fatal(err)
		}
	}
}
