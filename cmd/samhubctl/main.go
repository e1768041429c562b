// Command samhubctl operates a running Samhub through its HTTP API with an
// API token: the retry queue, letter journeys and the audit log. Output is
// a human table by default and JSON with -o json.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
