// Command importer imports residents in bulk into property-management systems
// through the Propexo write API, as one Asynq task per resident.
//
//	importer run residents.csv     import a file and wait for its report
//	importer worker                process the queue (as many as you like)
//	importer sandbox               a local stand-in for the write API
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
