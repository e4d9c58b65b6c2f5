package main

import (
	"os"
	"os/signal"
	"syscall"
)

// pause holds a container's network namespace, as a pod's pause container
// does: fwdd joins it (network_mode: service:...), so restarting fwdd does
// not tear down and re-attach the router's networks. It waits for SIGTERM
// or SIGINT.
func pause([]string) error {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
	return nil
}
