// Command nettool is the end-to-end tests' host tool: a static binary that
// runs in network namespaces and in FROM-scratch containers, where there is
// no ping, traceroute or nc.
//
//	nettool ping  [-i 5ms] [-c N | -t 6s] [-w 1s] [-s 56] [-json] DEST
//	nettool trace [-m 8] [-w 1s] [-q 2] DEST
//	nettool serve [-l :5001]                      TCP echo server
//	nettool tcp   [-n 1048576] [-w 10s] [-mss N] DEST:PORT  send N bytes, check the echo
//	nettool stream [-t 6s] [-i 5ms] [-mss N] [-json] DEST:PORT  paced echo stream, stalls measured
//	nettool host  [-gw ADDR] [-serve :5001]       set the default route, serve, wait
//	nettool espwatch -i IFACE [-t 10s]            ESP and AH sequence numbers per SPI, repeats counted
//	nettool ahcorrupt -i IFACE [-t 10s]           resend the first AH packet seen with its sequence number moved (ICV fails)
//	nettool ikeflood -src A [-n 50] [-rate 1000] [-t 5s] DEST  IKE_SA_INIT flood, cookies answered
//
// Every command exits 0 on success and 1 with a one-line error otherwise.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmds := map[string]func([]string) error{
		"ping":      ping,
		"trace":     trace,
		"serve":     serve,
		"tcp":       tcpTransfer,
		"stream":    stream,
		"host":      host,
		"espwatch":  espwatch,
		"ahcorrupt": ahcorrupt,
		"pause":     pause,
		"ikeflood":  ikeflood,
	}
	f, ok := cmds[os.Args[1]]
	if !ok {
		usage()
	}
	if err := f(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "nettool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: nettool (ping|trace|serve|tcp|stream|host|espwatch|ahcorrupt|pause|ikeflood) [flags] [DEST]")
	os.Exit(2)
}
