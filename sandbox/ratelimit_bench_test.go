package sandbox

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkRateLimit measures GET /employer/company through the handler
// (no network), with the rate limits off (the Options zero value, as the
// project's load runs use it) and on with a factor so large that nothing
// is refused: the difference is what the limiter costs a request.
func BenchmarkRateLimit(b *testing.B) {
	for _, bc := range []struct {
		name   string
		factor float64
	}{{"off", 0}, {"on", 1e6}} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := New(Options{RateLimitFactor: bc.factor})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			code := s.issueCode(&session{Products: []string{"company"}}, "gusto", "authorized_simple")
			c := s.st.Codes[digest(code)]
			c.Used = true
			tok := s.random(32)
			s.st.Tokens[digest(tok)] = &token{ConnectionID: c.ConnectionID, ClientID: DefaultClientID}
			b.ReportAllocs()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest("GET", "/employer/company", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				for pb.Next() {
					w := httptest.NewRecorder()
					s.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Errorf("status %d", w.Code)
						return
					}
				}
			})
		})
	}
}

// BenchmarkRateLimitCheck measures the limiter alone: one application
// check and one IP check, as every limited request makes.
func BenchmarkRateLimitCheck(b *testing.B) {
	s, err := New(Options{RateLimitFactor: 1e6})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	t := &token{ClientID: DefaultClientID}
	req := httptest.NewRequest("GET", "/employer/directory", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if !s.allowIP(w, req) || !s.allowApp(w, req, t) {
			b.Fatal("refused")
		}
	}
}
