module github.com/sitesec/sitesec/fwdd

go 1.26.0

require (
	github.com/sitesec/sitesec/proto v0.0.0
	github.com/sitesec/sitesec/services v0.0.0
)

require golang.org/x/crypto v0.59.0 // indirect

replace (
	github.com/sitesec/sitesec/proto => ../proto
	github.com/sitesec/sitesec/services => ../services
)
