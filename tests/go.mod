module github.com/sitesec/sitesec/tests

go 1.26.0

require (
	github.com/sitesec/sitesec/services v0.0.0
	github.com/vishvananda/netlink v1.3.1
	golang.org/x/net v0.62.0
)

require (
	github.com/vishvananda/netns v0.0.5 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace (
	github.com/sitesec/sitesec/proto => ../proto
	github.com/sitesec/sitesec/services => ../services
)
