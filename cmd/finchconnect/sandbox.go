package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/finchconnect/finchconnect/sandbox"
)

const sandboxSynopsis = "finchconnect sandbox [-addr 127.0.0.1:4000] [-client-id ID] [-client-secret SECRET] [-data FILE] [-revoke-on-reuse] [-public-url URL] [-rate-limits 1]"

// runSandbox runs the offline Finch-compatible sandbox until ctx is done.
// Its flags fall back to FINCHCONNECT_SANDBOX_* variables.
func runSandbox(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:4000", "address to listen on")
	clientID := fs.String("client-id", sandbox.DefaultClientID, "client id the sandbox accepts")
	clientSecret := fs.String("client-secret", sandbox.DefaultClientSecret, "client secret the sandbox accepts")
	dataFile := fs.String("data", "", "file that keeps the sandbox's state across restarts (default: memory only)")
	revoke := fs.Bool("revoke-on-reuse", false, "a reused code revokes the tokens it minted (RFC 6749 §10.5), until an hour after the code expired")
	publicURL := fs.String("public-url", "", "URL clients reach the sandbox at (default http://ADDR)")
	webhookURL := fs.String("webhook-url", "", "URL that receives signed Finch webhooks for status and data changes")
	webhookSecret := fs.String("webhook-secret", "", "base64 secret that signs the webhooks (required with -webhook-url)")
	rateLimits := fs.Float64("rate-limits", 1, "factor of Finch's rate limits: 1 is Finch's numbers, 2 twice as many requests, 0 turns them off (for load tests)")
	logLevel := fs.String("log-level", "warn", "log level")
	if err := parseSandboxFlags(fs, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printSandboxDefaults(fs, stdout)
			return nil
		}
		fmt.Fprintf(stderr, "finchconnect: %v\n\n", err)
		printSandboxDefaults(fs, stderr)
		return errUsage
	}
	if *webhookURL != "" && *webhookSecret == "" {
		return errorf("sandbox: -webhook-url needs -webhook-secret")
	}
	logger, err := newLogger(stderr, "text", *logLevel)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("sandbox: listen on %s: %w", *addr, err)
	}
	defer ln.Close()
	base := strings.TrimSuffix(*publicURL, "/")
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	sb, err := sandbox.New(sandbox.Options{
		ClientID: *clientID, ClientSecret: *clientSecret, PublicURL: base,
		DataFile: *dataFile, RevokeOnReuse: *revoke, Logger: logger,
		WebhookURL: *webhookURL, WebhookSecret: *webhookSecret,
		RateLimitFactor: *rateLimits,
	})
	if err != nil {
		return err
	}
	defer sb.Close()
	hs := &http.Server{
		Handler:           sb,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	fmt.Fprintf(stdout, "\nFinch sandbox at %s\n  FINCH_BASE_URL=%s\n  FINCH_CLIENT_ID=%s\n  FINCH_CLIENT_SECRET=%s\n", base, base, *clientID, *clientSecret)
	fmt.Fprintf(stdout, "Connect logins (password letmein): authorized_simple, authorized_complex, reauthorization\n")
	select {
	case err := <-serveErr:
		return fmt.Errorf("sandbox: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	<-serveErr
	return nil
}

// sandboxEnvName is the variable a sandbox flag falls back to: -client-id
// is FINCHCONNECT_SANDBOX_CLIENT_ID. The sandbox has names of its own so it
// can run beside `serve`, which reads FINCHCONNECT_ADDR and friends; for
// the same reason it does not read Finch's FINCH_CLIENT_ID, which is the
// app's setting.
func sandboxEnvName(flagName string) string {
	return "FINCHCONNECT_SANDBOX_" + strings.TrimPrefix(envName(flagName), "FINCHCONNECT_")
}

// parseSandboxFlags parses args, then fills every flag not given from its
// FINCHCONNECT_SANDBOX_ variable. Precedence: flag, environment, default.
func parseSandboxFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	// The sandbox's credentials and webhook secret are made-up test values,
	// not secrets: no warning for them on the command line.
	if err := parseFlags(fs, args, func(string) string { return "" }, io.Discard); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := sandboxEnvName(f.Name)
		if v := getenv(name); v != "" && !given[f.Name] {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s (for -%s): %v", name, f.Name, err))
			}
		}
	})
	return errors.Join(errs...)
}

// printSandboxDefaults writes the sandbox's usage, with each flag's
// variable.
func printSandboxDefaults(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\nFlags:\n", sandboxSynopsis)
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" && f.DefValue != "false" {
			def = fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(w, "  -%s\n    \t%s%s\n    \tenv: %s\n", f.Name, f.Usage, def, sandboxEnvName(f.Name))
	})
	fmt.Fprintf(w, "\nConnect logins (password letmein): authorized_simple, authorized_complex, reauthorization.\nSee docs/sandbox.md.\n")
}
