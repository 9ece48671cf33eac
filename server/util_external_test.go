package server_test

import (
	"io"
	"strings"
)

func ioNopCloser(r *strings.Reader) io.ReadCloser { return io.NopCloser(r) }
