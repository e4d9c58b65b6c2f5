module github.com/sitesec/sitesec/pkid

go 1.26.0

require github.com/sitesec/sitesec/proto v0.0.0

require (
	github.com/smallstep/pkcs7 v0.2.1 // indirect
	github.com/smallstep/scep v0.0.0-20260331191114-261f960a40d1 // indirect
	golang.org/x/crypto v0.33.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace (
	github.com/sitesec/sitesec/proto => ../proto
	github.com/sitesec/sitesec/services => ../services
)
