// Command fwdd is the sitesec fwdd daemon; see ../../README.md.
package main

import "github.com/sitesec/sitesec/services/daemon"

func main() { daemon.Main("fwdd", daemon.Idle{}) }
