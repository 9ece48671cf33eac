package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// BenchmarkAuthToken measures POST /auth/token over a real listener, from
// many goroutines: the sandbox must never be what limits the product's own
// load tests. Codes are minted beforehand, outside the timing.
func BenchmarkAuthToken(b *testing.B) {
	s, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	sess := &session{Products: []string{"company"}, RedirectURI: "http://localhost/cb"}
	codes := make([][]byte, b.N)
	for i := range codes {
		codes[i], _ = json.Marshal(map[string]string{"client_id": DefaultClientID, "client_secret": DefaultClientSecret,
			"code": s.issueCode(sess, "gusto", "authorized_simple"), "redirect_uri": "http://localhost/cb"})
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var next atomic.Int64
	b.ResetTimer()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := client.Post(ts.URL+"/auth/token", "application/json", bytes.NewReader(codes[next.Add(1)-1]))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
			}
		}
	})
}

// BenchmarkCompany measures GET /employer/company with one token.
func BenchmarkCompany(b *testing.B) {
	s, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	code := s.issueCode(&session{Products: []string{"company"}}, "gusto", "authorized_simple")
	c := s.st.Codes[digest(code)]
	c.Used = true
	tok := s.random(32)
	s.st.Tokens[digest(tok)] = &token{ConnectionID: c.ConnectionID}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", ts.URL+"/employer/company", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
			}
		}
	})
}
