module github.com/sitesec/sitesec/kmd

go 1.26.0

require github.com/sitesec/sitesec/services v0.0.0

require (
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/nats-io/nats.go v1.55.0 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/rs/zerolog v1.35.1
	github.com/sitesec/sitesec/proto v0.0.0
	golang.org/x/crypto v0.58.0
	golang.org/x/sys v0.49.0 // indirect
	google.golang.org/protobuf v1.36.12
)

replace (
	github.com/sitesec/sitesec/proto => ../proto
	github.com/sitesec/sitesec/services => ../services
)
