// Command cfgd is the sitesec configuration daemon; see ../../README.md.
package main

import (
	"github.com/sitesec/sitesec/cfgd/server"
	"github.com/sitesec/sitesec/services/daemon"
)

func main() { daemon.Main("cfgd", server.NewApp()) }
