module github.com/sitesec/sitesec/tests

go 1.26.0

require github.com/sitesec/sitesec/services v0.0.0

replace (
	github.com/sitesec/sitesec/proto => ../proto
	github.com/sitesec/sitesec/services => ../services
)
