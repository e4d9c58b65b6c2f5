// Command cli is the sitesec operator shell: `cli --root DIR` (or --bus
// URL) opens it, `cli --root DIR -c 'show system processes'` runs one
// command, and commands on standard input run in order.
package main

import (
	"os"

	"github.com/sitesec/sitesec/cfgd/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
