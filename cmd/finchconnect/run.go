package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// errUsage is returned when the command line is wrong and usage has already
// been printed; main exits 2 without printing it again.
var errUsage = errors.New("usage")

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

const usage = `finchconnect connects a back-end to the Finch employment API.

Usage:
  finchconnect [serve] [flags]    run the Connect back-end (without Finch credentials, the offline
                                  demo, on this machine only unless -demo)
  finchconnect sandbox [flags]    run the offline Finch-compatible sandbox
  finchconnect token list|get|delete [flags]
                                  inspect and remove stored connections (tokens redacted)
  finchconnect keygen [-id N]     print a new encryption key
  finchconnect keys status|rotate|retire [flags]
                                  show which keys seal the vault; re-encrypt it under a new primary
                                  key; remove a key no record uses
  finchconnect migrate -from URL -to URL
                                  copy every record between two stores
  finchconnect apikey create|list|revoke
                                  manage the API keys of the /v1 API
  finchconnect audit [-connection ID] [-since 24h]
                                  the trail of every use of a token
  finchconnect help               show this help

Run 'finchconnect COMMAND -h' for a command's flags. Every flag can also be set
with an environment variable: FINCHCONNECT_ and the flag's name in upper snake
case (-public-url is FINCHCONNECT_PUBLIC_URL). Finch's own FINCH_CLIENT_ID,
FINCH_CLIENT_SECRET and FINCH_BASE_URL are honoured too. Pass secrets
(-client-secret, -keys, -webhook-secret, -events-secret) in the environment:
every user of the machine can read a command line.
`

// run is the whole program. main only calls it, so tests can drive every
// command with their own arguments, environment and output streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd, rest := "serve", []string{}
	if len(args) > 1 {
		rest = args[2:]
		switch a := args[1]; {
		case a == "-h" || a == "-help" || a == "--help" || a == "help":
			fmt.Fprint(stdout, usage)
			return nil
		case strings.HasPrefix(a, "-"):
			// `finchconnect -addr …` is `finchconnect serve -addr …`.
			rest = args[1:]
		default:
			cmd = a
		}
	}
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "sandbox":
		return runSandbox(ctx, rest, getenv, stdout, stderr)
	case "token":
		return runToken(ctx, rest, getenv, stdout, stderr)
	case "keygen":
		return runKeygen(rest, stdout, stderr)
	case "keys":
		return runKeys(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, getenv, stdout, stderr)
	case "apikey":
		return runAPIKey(ctx, rest, getenv, stdout, stderr)
	case "audit":
		return runAudit(ctx, rest, getenv, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "finchconnect: unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
}

// envAliases lists, per flag name, the environment variables read before the
// FINCHCONNECT_ one: Finch's SDKs read FINCH_CLIENT_ID and friends, so an app
// already configured for Finch needs no new names.
var envAliases = map[string][]string{
	"client-id":      {"FINCH_CLIENT_ID"},
	"client-secret":  {"FINCH_CLIENT_SECRET"},
	"finch-base-url": {"FINCH_BASE_URL"},
	"webhook-secret": {"FINCH_WEBHOOK_SECRET"},
}

// secretFlags are the flags whose values are secrets. Given on the command
// line, a secret is readable by every user of the machine (ps,
// /proc/PID/cmdline) and lands in shell histories, so parseFlags warns.
var secretFlags = map[string]bool{"client-secret": true, "keys": true, "webhook-secret": true, "events-secret": true}

// envName is the FINCHCONNECT_ variable for a flag: -public-url is
// FINCHCONNECT_PUBLIC_URL.
func envName(flagName string) string {
	return "FINCHCONNECT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses args, then fills every flag not given on the command line
// from the environment (Finch alias first, then FINCHCONNECT_*). Precedence:
// flag, environment, default. A bad value from the environment names the
// variable. A secret given as a flag is used, with a warning on stderr.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string, stderr io.Writer) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		given[f.Name] = true
		if secretFlags[f.Name] {
			envs := append(append([]string{}, envAliases[f.Name]...), envName(f.Name))
			fmt.Fprintf(stderr, "finchconnect: warning: -%s was given on the command line, where every user of this machine can read it (ps); set %s instead\n",
				f.Name, strings.Join(envs, " or "))
		}
	})
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		for _, name := range append(envAliases[f.Name], envName(f.Name)) {
			if v := getenv(name); v != "" {
				if err := fs.Set(f.Name, v); err != nil {
					errs = append(errs, fmt.Errorf("%s (for -%s): %v", name, f.Name, err))
				}
				return
			}
		}
	})
	return errors.Join(errs...)
}

// printDefaults writes a flag set's usage to w, with each flag's environment
// variable.
func printDefaults(fs *flag.FlagSet, w io.Writer, synopsis string) {
	fmt.Fprintf(w, "Usage: %s\n\nFlags:\n", synopsis)
	fs.VisitAll(func(f *flag.Flag) {
		envs := append(append([]string{}, envAliases[f.Name]...), envName(f.Name))
		def := ""
		if f.DefValue != "" && f.DefValue != "false" {
			def = fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(w, "  -%s\n    \t%s%s\n    \tenv: %s\n", f.Name, f.Usage, def, strings.Join(envs, ", "))
	})
}

// handleParseError turns a parse failure into help on stdout (for -h) or a
// usage error on stderr.
func handleParseError(err error, fs *flag.FlagSet, stdout, stderr io.Writer, synopsis string) error {
	if errors.Is(err, flag.ErrHelp) {
		printDefaults(fs, stdout, synopsis)
		return nil
	}
	fmt.Fprintf(stderr, "finchconnect: %v\n\n", err)
	printDefaults(fs, stderr, synopsis)
	return errUsage
}
