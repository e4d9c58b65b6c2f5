module github.com/sitesec/sitesec/cfgd

go 1.26.0

require (
	github.com/sitesec/sitesec/proto v0.0.0
	github.com/sitesec/sitesec/services v0.0.0
)

require google.golang.org/protobuf v1.36.12 // indirect

replace (
	github.com/sitesec/sitesec/proto => ../proto
	github.com/sitesec/sitesec/services => ../services
)
