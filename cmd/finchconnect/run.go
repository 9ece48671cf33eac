package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// quietRedis drops go-redis's own log lines (connection pool retries and
// the like): a store that cannot be reached is reported once, as an error
// that names the store and what to do.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

var quietRedisOnce sync.Once

// errUsage is returned when the command line is wrong and usage has already
// been printed; main exits 2 without printing it again.
var errUsage = errors.New("usage")

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// commands are the top-level commands, in the order help lists them. A
// command is a command or a group of subcommands.
func commands() []any {
	return []any{
		&serveCmd{limits: serveLimits{minRecoverAfter: recoverAfterFloor}},
		&sandboxCmd{},
		group{name: "token", summary: "Inspect and remove the vault's connections (tokens redacted).",
			subs: []command{&tokenListCmd{}, &tokenGetCmd{}, &tokenDeleteCmd{}}},
		&keygenCmd{},
		group{name: "keys", summary: "Show, rotate and retire the keys that seal the vault.",
			subs: []command{&keysStatusCmd{}, &keysRotateCmd{}, &keysRetireCmd{}}},
		&migrateCmd{},
		group{name: "apikey", summary: "Manage the API keys of the /v1 API.",
			subs: []command{&apikeyCreateCmd{}, &apikeyListCmd{}, &apikeyRevokeCmd{}}},
		&auditCmd{},
		group{name: "sync", summary: "Inspect the sync of each employer's data (docs/sync.md).",
			subs: []command{&syncStatusCmd{}}},
	}
}

func nameOf(c any) string {
	switch c := c.(type) {
	case group:
		return c.name
	case command:
		return c.spec().name
	}
	return ""
}

func usage(w io.Writer) {
	fmt.Fprint(w, "finchconnect connects a back-end to the Finch employment API.\n\nUsage:\n")
	for _, c := range commands() {
		switch c := c.(type) {
		case group:
			var subs []string
			for _, s := range c.subs {
				subs = append(subs, strings.TrimPrefix(s.spec().name, c.name+" "))
			}
			fmt.Fprintf(w, "  finchconnect %s %s\n        %s\n", c.name, strings.Join(subs, "|"), c.summary)
		case command:
			fmt.Fprintf(w, "  %s\n        %s\n", c.spec().synopsis(), c.spec().summary)
		}
	}
	fmt.Fprint(w, `  finchconnect help [COMMAND]
        Show this help, or a command's.

With no command, finchconnect runs serve. Run 'finchconnect COMMAND -h' for a
command's flags: 'finchconnect serve -h' lists the server's, each with its
environment variable (FINCHCONNECT_ and the flag's name in upper snake case;
Finch's own FINCH_CLIENT_ID, FINCH_CLIENT_SECRET and FINCH_BASE_URL are read
too). The other commands read only the settings they share with the server
from the environment (-store, -data-dir, -keys, -keys-file, -finch-base-url);
their own options are flags. Pass secrets (-client-secret, -keys,
-webhook-secret, -events-secret) in the environment or a key file: every user
of the machine can read a command line.
`)
}

// run is the whole program. main only calls it, so tests can drive every
// command with their own arguments, environment and streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	// go-redis's logger is one for the process: set it once, not on every
	// run of tests that run commands side by side.
	quietRedisOnce.Do(func() { goredis.SetLogger(quietRedis{}) })
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	c := &cli{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	name, rest := "serve", []string{}
	if len(args) > 1 {
		name, rest = args[1], args[2:]
		switch {
		case isHelp(name):
			return c.help(ctx, rest)
		case strings.HasPrefix(name, "-"):
			// `finchconnect -addr …` is `finchconnect serve -addr …`.
			name, rest = "serve", args[1:]
		}
	}
	return c.dispatch(ctx, name, rest)
}

func (c *cli) dispatch(ctx context.Context, name string, args []string) error {
	for _, cmd := range commands() {
		if nameOf(cmd) != name {
			continue
		}
		if g, ok := cmd.(group); ok {
			return c.runGroupCmd(ctx, g, args)
		}
		return c.runCommand(ctx, cmd.(command), args)
	}
	fmt.Fprintf(c.stderr, "finchconnect: unknown command %q\n\n", name)
	usage(c.stderr)
	return errUsage
}

// help is `finchconnect help [COMMAND [SUBCOMMAND]]`: the list of commands,
// or a command's -h.
func (c *cli) help(ctx context.Context, args []string) error {
	if len(args) == 0 {
		usage(c.stdout)
		return nil
	}
	return c.dispatch(ctx, args[0], append(args[1:], "-h"))
}
