package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// A command is one `finchconnect` command or subcommand, in the manner of
// go, git and kubectl: it declares its flags, then runs with the positional
// arguments left once they are parsed. The dispatcher parses, answers -h,
// and fills flags from the environment where the command allows it.
type command interface {
	spec() cmdSpec
	// flags registers the command's flags on fs.
	flags(fs *flag.FlagSet)
	// run runs the command once its flags are parsed; args are the
	// positional arguments, already counted against spec().args.
	run(ctx context.Context, c *cli, args []string) error
}

// cmdSpec describes a command for the dispatcher and its usage text.
type cmdSpec struct {
	name    string // "token delete"
	args    string // positional arguments in the synopsis ("CONNECTION_ID"), "" for none
	summary string // one line for the list of commands
	detail  string // paragraphs after the synopsis in -h
	// env names the variables a flag falls back to, in order; nil or an
	// empty answer means the flag is read from the command line only.
	env func(flagName string) []string
	// testSecrets: the command's "secrets" are made-up test values (the
	// sandbox's), so no warning when they are given as flags.
	testSecrets bool
}

func (s cmdSpec) synopsis() string {
	out := "finchconnect " + s.name + " [flags]"
	if s.args != "" {
		out += " " + s.args
	}
	return out
}

// nargs is how many positional arguments the command takes: one per word
// of its synopsis' args.
func (s cmdSpec) nargs() int { return len(strings.Fields(s.args)) }

// cli is what a command sees of the process: its environment and streams.
type cli struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// group is a command with subcommands: `token`, `keys`, `apikey`.
type group struct {
	name    string
	summary string
	subs    []command
}

// runGroupCmd dispatches args (after the group's name) to a subcommand.
func (c *cli) runGroupCmd(ctx context.Context, g group, args []string) error {
	if len(args) == 0 {
		fmt.Fprintf(c.stderr, "finchconnect %s: a subcommand is needed\n\n", g.name)
		g.usage(c.stderr)
		return errUsage
	}
	if isHelp(args[0]) {
		g.usage(c.stdout)
		return nil
	}
	for _, sub := range g.subs {
		if sub.spec().name == g.name+" "+args[0] {
			return c.runCommand(ctx, sub, args[1:])
		}
	}
	fmt.Fprintf(c.stderr, "finchconnect %s: unknown subcommand %q\n\n", g.name, args[0])
	g.usage(c.stderr)
	return errUsage
}

func (g group) usage(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nUsage:\n", g.summary)
	for _, sub := range g.subs {
		s := sub.spec()
		fmt.Fprintf(w, "  %s\n        %s\n", s.synopsis(), s.summary)
	}
	fmt.Fprintf(w, "\nRun 'finchconnect %s SUBCOMMAND -h' for a subcommand's flags.\n", g.name)
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" || a == "help" }

// runCommand parses cmd's flags from args and the environment and runs it.
// -h prints its usage on stdout; a bad command line prints the error and
// the usage on stderr and exits 2.
func (c *cli) runCommand(ctx context.Context, cmd command, args []string) error {
	spec := cmd.spec()
	fs := flag.NewFlagSet(spec.name, flag.ContinueOnError)
	cmd.flags(fs)
	pos, err := c.parse(fs, spec, args)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(fs, spec, c.stdout)
		return nil
	}
	if err == nil && len(pos) != spec.nargs() {
		err = argCountError(spec, pos)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "finchconnect %s: %v\n\n", spec.name, err)
		printUsage(fs, spec, c.stderr)
		return errUsage
	}
	return cmd.run(ctx, c, pos)
}

func argCountError(spec cmdSpec, pos []string) error {
	switch {
	case spec.nargs() == 0:
		return fmt.Errorf("takes no argument, got %q", pos[0])
	case len(pos) == 0:
		return fmt.Errorf("needs %s", spec.args)
	default:
		return fmt.Errorf("takes %d argument (%s), got %q", spec.nargs(), spec.args, pos)
	}
}

// parse parses args, flags and positional arguments in any order (so
// `token get ID -json` and `token get -json ID` both work; everything after
// "--" is positional), then fills every flag not given from the
// environment, as spec.env allows. Precedence: flag, environment, default.
// A secret given as a flag is used, with a warning on stderr.
func (c *cli) parse(fs *flag.FlagSet, spec cmdSpec, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		given[f.Name] = true
		if secretFlags[f.Name] && !spec.testSecrets {
			warnSecretFlag(c.stderr, f.Name, spec)
		}
	})
	return pos, c.fillFromEnv(fs, spec, given)
}

func warnSecretFlag(w io.Writer, name string, spec cmdSpec) {
	hint := "pass it in the environment or a file"
	if spec.env != nil {
		if envs := spec.env(name); len(envs) > 0 {
			hint = "set " + strings.Join(envs, " or ") + " instead"
		}
	}
	fmt.Fprintf(w, "finchconnect: warning: -%s was given on the command line, where every user of this machine can read it (ps); %s\n", name, hint)
}

func (c *cli) fillFromEnv(fs *flag.FlagSet, spec cmdSpec, given map[string]bool) error {
	if spec.env == nil {
		return nil
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		for _, name := range spec.env(f.Name) {
			if v := c.getenv(name); v != "" {
				if err := fs.Set(f.Name, v); err != nil {
					errs = append(errs, fmt.Errorf("%s (for -%s): %v", name, f.Name, err))
				}
				return
			}
		}
	})
	return errors.Join(errs...)
}

// printUsage writes a command's synopsis, description and flags to w, with
// each flag's environment variables where it has some.
func printUsage(fs *flag.FlagSet, spec cmdSpec, w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", spec.synopsis(), spec.summary)
	if spec.detail != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(spec.detail))
	}
	fmt.Fprintf(w, "\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			def = fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(w, "  -%s\n    \t%s%s\n", f.Name, f.Usage, def)
		if spec.env != nil {
			if envs := spec.env(f.Name); len(envs) > 0 {
				fmt.Fprintf(w, "    \tenv: %s\n", strings.Join(envs, ", "))
			}
		}
	})
}

// envName is the FINCHCONNECT_ variable for a flag: -public-url is
// FINCHCONNECT_PUBLIC_URL.
func envName(flagName string) string {
	return "FINCHCONNECT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
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
// /proc/PID/cmdline) and lands in shell histories, so parse warns.
var secretFlags = map[string]bool{"client-secret": true, "keys": true, "webhook-secret": true, "events-secret": true}

// serverEnv is the environment of `serve`, a daemon configured by its
// environment: every flag, Finch's names first.
func serverEnv(flagName string) []string {
	return append(slices.Clone(envAliases[flagName]), envName(flagName))
}

// sharedSettings are the settings an operator command shares with the
// server it operates on: where the vault is, its keys, where Finch is. They
// are read from the same variables as serve's. A command's own options
// (-status, -reveal, -id, -from, …) are read from its command line only.
var sharedSettings = map[string]bool{
	"store": true, "data-dir": true, "keys": true, "keys-file": true, "finch-base-url": true,
}

func sharedEnv(flagName string) []string {
	if !sharedSettings[flagName] {
		return nil
	}
	return serverEnv(flagName)
}

// enumValue is a flag that takes one of a fixed set of values (or, multi,
// a comma-separated list of them), and says which when given another.
type enumValue struct {
	allowed    []string
	multi      bool
	allowEmpty bool // the default is empty: "" means unset
	p          *string
}

// enumVar defines an enum flag. The empty value is accepted when the
// default is empty (the flag then means "unset").
func enumVar(fs *flag.FlagSet, p *string, name, def string, allowed []string, usage string) {
	*p = def
	fs.Var(&enumValue{allowed: allowed, allowEmpty: def == "", p: p}, name, usage+" ("+strings.Join(allowed, ", ")+")")
}

// enumListVar defines a flag that takes a comma-separated list of allowed
// values.
func enumListVar(fs *flag.FlagSet, p *string, name, def string, allowed []string, usage string) {
	*p = def
	fs.Var(&enumValue{allowed: allowed, multi: true, p: p}, name, usage+", comma-separated, of: "+strings.Join(allowed, ", "))
}

func (e *enumValue) String() string {
	if e == nil || e.p == nil {
		return ""
	}
	return *e.p
}

func (e *enumValue) Set(s string) error {
	items := []string{s}
	if e.multi {
		items = splitList(s)
		if len(items) == 0 {
			return fmt.Errorf("empty; want one or more of %s", strings.Join(e.allowed, ", "))
		}
	}
	for _, item := range items {
		if item == "" && e.allowEmpty {
			break
		}
		if !slices.Contains(e.allowed, item) {
			return fmt.Errorf("%q is not one of %s", item, strings.Join(e.allowed, ", "))
		}
	}
	*e.p = s
	return nil
}

// confirm asks the operator to type want before an action that cannot be
// undone. -yes (yes) confirms for scripts; without it, and without a
// terminal to ask on, it refuses, so a pipe or a cron job never destroys
// anything by default.
func (c *cli) confirm(action, want string, yes bool) error {
	if yes {
		return nil
	}
	if !isTerminal(c.stdin) {
		return fmt.Errorf("refusing to %s without a confirmation, and there is no terminal to ask on: run it in a terminal, or add -yes to confirm in a script", action)
	}
	fmt.Fprintf(c.stderr, "This will %s. It cannot be undone.\nType %s to confirm: ", action, want)
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if strings.TrimSpace(line) != want {
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("no confirmation (%v): nothing was changed", err)
		}
		return errors.New("not confirmed: nothing was changed")
	}
	return nil
}

// terminal is implemented by a stdin that tests present as a terminal.
type terminal interface{ IsTerminal() bool }

// isTerminal reports whether r is an interactive terminal. A character
// device is not enough: /dev/null is one, and it is the stdin of cron jobs
// and of `cmd </dev/null` in scripts, which must get the refusal that names
// -yes, not a prompt nobody answers.
func isTerminal(r any) bool {
	switch f := r.(type) {
	case terminal:
		return f.IsTerminal()
	case *os.File:
		return fileIsTerminal(f)
	}
	return false
}
