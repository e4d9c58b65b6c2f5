// Command pkid is the sitesec PKI daemon; see ../../README.md.
package main

import (
	"github.com/sitesec/sitesec/pkid/pki"
	"github.com/sitesec/sitesec/services/daemon"
)

func main() { daemon.Main("pkid", pki.New()) }
