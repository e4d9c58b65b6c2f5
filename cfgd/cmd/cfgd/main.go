// Command cfgd is the sitesec cfgd daemon; see ../../README.md.
package main

import "github.com/sitesec/sitesec/services/daemon"

func main() { daemon.Main("cfgd", daemon.Idle{}) }
