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
	err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "finchconnect:", err)
		}
		os.Exit(exitCode(err))
	}
}
