// Command fpctl is the command line over the Firstparty API for the
// everyday tasks: apply a configuration file (GitOps), create a source,
// rotate and revoke write keys, list, apply and delete segments and webhook
// destinations, look a profile up, erase a person, and tail
// segment triggers from Kafka. The API's address and admin key come from
// FP_API_URL and FP_ADMIN_KEY (as in .local/demo.env) or --api-url and
// --admin-key. Run fpctl help for the commands.
//
// Exit codes: 0 done; 1 the API refused the request (4xx) or the command
// failed; 2 the command line is wrong; 3 the API or Kafka could not be
// reached or answered 5xx (retry).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
