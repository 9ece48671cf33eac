package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/finchconnect/finchconnect/sandbox"
)

// sandboxCmd runs the offline Finch-compatible sandbox until ctx is done.
// Its flags fall back to FINCHCONNECT_SANDBOX_* variables.
type sandboxCmd struct {
	addr, clientID, clientSecret, dataFile string
	revoke                                 bool
	publicURL, webhookURL, webhookSecret   string
	rateLimits                             float64
	logLevel                               string
}

func (*sandboxCmd) spec() cmdSpec {
	return cmdSpec{name: "sandbox", env: sandboxEnv, testSecrets: true, summary: "Run the offline Finch-compatible sandbox.",
		detail: "Connect logins (password letmein): authorized_simple, authorized_complex, reauthorization.\nSee docs/sandbox.md."}
}

func (s *sandboxCmd) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.addr, "addr", "127.0.0.1:4000", "address to listen on")
	fs.StringVar(&s.clientID, "client-id", sandbox.DefaultClientID, "client id the sandbox accepts")
	fs.StringVar(&s.clientSecret, "client-secret", sandbox.DefaultClientSecret, "client secret the sandbox accepts")
	fs.StringVar(&s.dataFile, "data", "", "file that keeps the sandbox's state across restarts (default: memory only)")
	fs.BoolVar(&s.revoke, "revoke-on-reuse", false, "a reused code revokes the tokens it minted (RFC 6749 §10.5), until an hour after the code expired")
	fs.StringVar(&s.publicURL, "public-url", "", "URL clients reach the sandbox at (default http://ADDR)")
	fs.StringVar(&s.webhookURL, "webhook-url", "", "URL that receives signed Finch webhooks for status and data changes")
	fs.StringVar(&s.webhookSecret, "webhook-secret", "", "base64 secret that signs the webhooks (required with -webhook-url)")
	fs.Float64Var(&s.rateLimits, "rate-limits", 1, "factor of Finch's rate limits: 1 is Finch's numbers, 2 twice as many requests, 0 turns them off (for load tests)")
	enumVar(fs, &s.logLevel, "log-level", "warn", logLevels, "log level")
}

func (s *sandboxCmd) run(ctx context.Context, c *cli, _ []string) error {
	stdout, stderr := c.stdout, c.stderr
	for _, u := range [][2]string{{"-public-url", s.publicURL}, {"-webhook-url", s.webhookURL}} {
		if u[1] != "" {
			if err := checkHTTPURL(u[0], u[1]); err != nil {
				return err
			}
		}
	}
	if s.rateLimits < 0 {
		return errorf(fmt.Sprintf("-rate-limits must be 0 (off) or a positive factor of Finch's numbers, not %v", s.rateLimits))
	}
	if s.webhookURL != "" && s.webhookSecret == "" {
		return errorf("-webhook-url needs -webhook-secret (FINCHCONNECT_SANDBOX_WEBHOOK_SECRET), the base64 secret that signs the webhooks")
	}
	logger, err := newLogger(stderr, "text", s.logLevel)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (%s): pick another -addr", s.addr, unwrapNetError(err))
	}
	defer ln.Close()
	base := strings.TrimSuffix(s.publicURL, "/")
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	sb, err := sandbox.New(sandbox.Options{
		ClientID: s.clientID, ClientSecret: s.clientSecret, PublicURL: base,
		DataFile: s.dataFile, RevokeOnReuse: s.revoke, Logger: logger,
		WebhookURL: s.webhookURL, WebhookSecret: s.webhookSecret,
		RateLimitFactor: s.rateLimits,
	})
	if err != nil {
		return err
	}
	defer sb.Close()
	// Requests' contexts end when the sandbox stops, so that a request
	// held by a latency fault does not hold the shutdown for as long (its
	// context ends only when its client hangs up after sending the whole
	// body, which a client killed mid-request may never do).
	reqCtx, endRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer endRequests()
	hs := &http.Server{
		Handler:           sb,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	fmt.Fprintf(stdout, "\nFinch sandbox at %s\n  FINCH_BASE_URL=%s\n  FINCH_CLIENT_ID=%s\n  FINCH_CLIENT_SECRET=%s\n", base, base, s.clientID, s.clientSecret)
	fmt.Fprintf(stdout, "Connect logins (password letmein): authorized_simple, authorized_complex, reauthorization\n")
	select {
	case err := <-serveErr:
		return fmt.Errorf("the sandbox stopped serving: %w", err)
	case <-ctx.Done():
	}
	endRequests()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	<-serveErr
	return nil
}

// sandboxEnv is the variable a sandbox flag falls back to: -client-id is
// FINCHCONNECT_SANDBOX_CLIENT_ID. The sandbox has names of its own so it
// can run beside `serve`, which reads FINCHCONNECT_ADDR and friends; for
// the same reason it does not read Finch's FINCH_CLIENT_ID, which is the
// app's setting.
func sandboxEnv(flagName string) []string {
	return []string{"FINCHCONNECT_SANDBOX_" + strings.TrimPrefix(envName(flagName), "FINCHCONNECT_")}
}
