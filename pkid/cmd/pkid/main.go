// Command pkid is the sitesec pkid daemon; see ../../README.md.
package main

import "github.com/sitesec/sitesec/services/daemon"

func main() { daemon.Main("pkid", daemon.Idle{}) }
