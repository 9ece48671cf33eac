package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

// runCLI runs `finchconnect args...` with env and stdin, and returns its
// streams and error.
func runCLI(t *testing.T, env map[string]string, stdin io.Reader, args ...string) (string, string, error) {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	err := run(ctx, append([]string{"finchconnect"}, args...), func(k string) string { return env[k] }, stdin, &out, &errOut)
	return out.String(), errOut.String(), err
}

// everyCommand lists every command and subcommand as its words ("token
// delete") with its command value.
func everyCommand() map[string]command {
	all := map[string]command{}
	for _, c := range commands() {
		switch c := c.(type) {
		case group:
			for _, s := range c.subs {
				all[s.spec().name] = s
			}
		case command:
			all[c.spec().name] = c
		}
	}
	return all
}

// TestCLI_HelpOnEveryCommand runs every command, subcommand and group with
// -h, --help and through `help`: each exits 0 and prints its usage on
// stdout, nothing on stderr.
func TestCLI_HelpOnEveryCommand(t *testing.T) {
	var names []string
	for name := range everyCommand() {
		names = append(names, name)
	}
	for _, c := range commands() {
		if g, ok := c.(group); ok {
			names = append(names, g.name)
		}
	}
	if len(names) < 14 {
		t.Fatalf("found %d commands, want every one of them (%v)", len(names), names)
	}
	for _, name := range names {
		words := strings.Fields(name)
		for _, args := range [][]string{append(slices.Clone(words), "-h"), append(slices.Clone(words), "--help"), append([]string{"help"}, words...)} {
			out, errOut, err := runCLI(t, nil, nil, args...)
			if err != nil || errOut != "" {
				t.Errorf("finchconnect %s: err = %v, stderr %q; want exit 0 and nothing on stderr", strings.Join(args, " "), err, errOut)
			}
			if !strings.Contains(out, "finchconnect "+name) || !strings.Contains(out, "Usage") {
				t.Errorf("finchconnect %s printed %q, want its usage", strings.Join(args, " "), out)
			}
		}
	}
	out, _, err := runCLI(t, nil, nil, "-h")
	if err != nil || !strings.Contains(out, "keys status|rotate|retire") || !strings.Contains(out, "serve -h") {
		t.Errorf("finchconnect -h = %v\n%s; want the commands and where the flags are", err, out)
	}
}

// TestCLI_BadEnumValues gives every enum flag of every command a value it
// does not take: each is a usage error (exit 2) whose message lists every
// value the flag allows, before anything is opened or started.
func TestCLI_BadEnumValues(t *testing.T) {
	found := map[string]bool{}
	for name, cmd := range everyCommand() {
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		cmd.flags(fs)
		fs.VisitAll(func(f *flag.Flag) {
			ev, ok := f.Value.(*enumValue)
			if !ok {
				return
			}
			found[name+" -"+f.Name] = true
			bad := "bogus"
			if ev.multi {
				bad = ev.allowed[0] + ",bogus"
			}
			args := append(strings.Fields(name), "-"+f.Name, bad, "-data-dir", t.TempDir())
			if cmd.spec().nargs() > 0 {
				args = append(args, "some-id")
			}
			_, stderr, err := runCLI(t, nil, nil, args...)
			// The usage that follows lists the values too: look at the
			// error line alone.
			errOut, _, _ := strings.Cut(stderr, "\n")
			if !errors.Is(err, errUsage) || exitCode(err) != 2 {
				t.Errorf("finchconnect %s: err = %v, want a usage error (exit 2)", strings.Join(args, " "), err)
			}
			for _, v := range ev.allowed {
				if !strings.Contains(errOut, v) {
					t.Errorf("finchconnect %s: stderr does not name the allowed value %q:\n%s", strings.Join(args, " "), v, errOut)
				}
			}
			if !strings.Contains(errOut, `"bogus"`) {
				t.Errorf("finchconnect %s: stderr does not name the bad value:\n%s", strings.Join(args, " "), errOut)
			}
		})
	}
	for _, want := range []string{"token list -status", "apikey create -scope", "serve -products", "serve -sandbox", "serve -log-format", "serve -log-level", "sandbox -log-level"} {
		if !found[want] {
			t.Errorf("%s is not an enum flag; found %v", want, found)
		}
	}
	// From the environment, the variable is named.
	_, stderr, err := runCLI(t, map[string]string{"FINCHCONNECT_LOG_LEVEL": "loud"}, nil, "serve", "-data-dir", t.TempDir())
	errOut, _, _ := strings.Cut(stderr, "\n")
	if !errors.Is(err, errUsage) || !strings.Contains(errOut, "FINCHCONNECT_LOG_LEVEL") || !strings.Contains(errOut, "debug, info, warn, error") {
		t.Errorf("FINCHCONNECT_LOG_LEVEL=loud: err = %v\n%s; want a usage error naming the variable and the levels", err, errOut)
	}
}

// TestCLI_UsageErrors: unknown commands and subcommands, and wrong
// argument counts, exit 2 with the usage on stderr.
func TestCLI_UsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"nope"}, {"token"}, {"token", "nope"}, {"keys"}, {"apikey", "nope"},
		{"token", "get"}, {"token", "delete", "a", "b"}, {"token", "list", "extra"}, {"keys", "status", "-nope"},
	} {
		out, errOut, err := runCLI(t, nil, nil, args...)
		if !errors.Is(err, errUsage) || out != "" || !strings.Contains(errOut, "Usage") {
			t.Errorf("finchconnect %v: err = %v, stdout %q, stderr %q; want exit 2 and the usage on stderr", args, err, out, errOut)
		}
	}
}

// TestCLI_OptionsAreNotReadFromTheEnvironment: a command's own options are
// flags only. FINCHCONNECT_REVEAL must not print a token, and
// FINCHCONNECT_STATUS must not filter a list, while the shared settings
// (FINCHCONNECT_DATA_DIR) are read.
func TestCLI_OptionsAreNotReadFromTheEnvironment(t *testing.T) {
	v := newVaultWith(t, 1, "conn-1")
	env := map[string]string{"FINCHCONNECT_KEYS": v.keys, "FINCHCONNECT_DATA_DIR": v.dir, "FINCHCONNECT_REVEAL": "true",
		"FINCHCONNECT_STATUS": "reauth", "FINCHCONNECT_JSON": "true"}
	out, _, err := runCLI(t, env, nil, "token", "get", "conn-1")
	if err != nil || strings.Contains(out, v.token("conn-1")) || !strings.Contains(out, "[redacted]") {
		t.Errorf("token get with FINCHCONNECT_REVEAL=true = %v\n%s; want the token redacted", err, out)
	}
	out, _, err = runCLI(t, env, nil, "token", "list")
	if err != nil || !strings.Contains(out, "conn-1") || strings.HasPrefix(out, "[") {
		t.Errorf("token list with FINCHCONNECT_STATUS=reauth and FINCHCONNECT_JSON=true = %v\n%s; want the table with conn-1", err, out)
	}
	out, _, err = runCLI(t, env, nil, "token", "get", "-reveal", "conn-1")
	if err != nil || strings.TrimSpace(out) != v.token("conn-1") {
		t.Errorf("token get -reveal = %v, %q; want the token", err, out)
	}
}

// TestCLI_ErrorsAreOneSentence: no package layering in what an operator
// reads, and a bare path as -store suggests sqlite://.
func TestCLI_ErrorsAreOneSentence(t *testing.T) {
	v := newVaultWith(t, 1, "conn-1")
	env := map[string]string{"FINCHCONNECT_KEYS": v.keys}
	_, _, err := runCLI(t, env, nil, "token", "get", "-data-dir", v.dir, "nope")
	if err == nil || strings.Contains(err.Error(), "tokenstore:") || strings.Contains(err.Error(), "sqlite:") || !strings.Contains(err.Error(), "token list") {
		t.Errorf("token get nope: %v; want one sentence pointing at token list", err)
	}
	_, _, err = runCLI(t, env, nil, "token", "list", "-store", "x.db")
	if err == nil || !strings.Contains(err.Error(), "sqlite:///") {
		t.Errorf("-store x.db: %v; want a suggestion of sqlite:///…", err)
	}
	// Finch out of reach: the address that refused, not the client's and
	// the dialer's layers ("finch: POST /disconnect: dial tcp …").
	_, _, err = runCLI(t, env, nil, "token", "delete", "-yes", "-data-dir", v.dir, "-finch-base-url", "http://127.0.0.1:1", "conn-1")
	if err == nil || !strings.Contains(err.Error(), "nothing accepts connections at 127.0.0.1:1") || strings.Contains(err.Error(), "finch:") || strings.Contains(err.Error(), "dial tcp") {
		t.Errorf("token delete with Finch unreachable: %v; want one sentence naming the address that refused", err)
	}
	_, _, err = runCLI(t, nil, nil, "serve", "-public-url", "notaurl", "-data-dir", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "-public-url") || !strings.Contains(err.Error(), "not a URL") || strings.Contains(err.Error(), "credentials") {
		t.Errorf("-public-url notaurl: %v; want it reported as a bad URL", err)
	}
}

// TestTokenList_JSONOfNothingIsAnEmptyList: a script reading `token list
// -json` gets [] when nothing matches, not null.
func TestTokenList_JSONOfNothingIsAnEmptyList(t *testing.T) {
	v := newVaultWith(t, 1, "conn-1")
	out, _, err := runCLI(t, map[string]string{"FINCHCONNECT_KEYS": v.keys}, nil, "token", "list", "-json", "-status", "reauth", "-data-dir", v.dir)
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("token list -json with nothing matching = %v, %q; want []", err, out)
	}
}
