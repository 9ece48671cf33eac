// Command finchconnect connects a back-end to the Finch employment API.
//
// With no arguments (or `serve`) it runs the Connect back-end; with no Finch
// credentials configured that is the offline demo, with the sandbox
// in-process. Other subcommands operate the vault and the sandbox; run
// `finchconnect help` for the list.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal starts a graceful shutdown, which may wait minutes
	// for callbacks in flight. Stop catching signals then, so that a
	// second one ends the process at once.
	forceable := context.AfterFunc(ctx, func() {
		stop()
		fmt.Fprintln(os.Stderr, "finchconnect: shutting down; press Ctrl-C again to force")
	})
	err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	forceable() // run is over: no message if no signal came
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "finchconnect:", err)
		}
		os.Exit(exitCode(err))
	}
}
