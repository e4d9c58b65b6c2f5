# sitesec: see README.md. Everything here runs from the repository root.
GO      ?= go
BIN     := bin
MODULES := proto services cfgd kmd pkid fwdd tests
PKGS    := $(foreach m,$(MODULES),./$(m)/...)
export CGO_ENABLED := 0

# Pinned generators (see scripts/proto.sh): protoc from Debian 12
# (protobuf-compiler 3.21.12) and protoc-gen-go v1.36.12.
PROTOC_GEN_GO_VERSION := v1.36.12

.PHONY: all build deps test unit lint proto proto-tools run images e2e bench bench-net bench-setup bench-scale fuzz clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -o $(BIN)/sitesecd ./services/cmd/sitesecd
	$(GO) build -trimpath -o $(BIN)/cfgd ./cfgd/cmd/cfgd
	$(GO) build -trimpath -o $(BIN)/cli ./cfgd/cmd/cli
	$(GO) build -trimpath -o $(BIN)/kmd ./kmd/cmd/kmd
	$(GO) build -trimpath -o $(BIN)/pkid ./pkid/cmd/pkid
	$(GO) build -trimpath -o $(BIN)/fwdd ./fwdd/cmd/fwdd

# The whole suite: lint, unit tests of every module, and the cross-daemon
# tests in tests/ against the binaries just built. `deps` installs what
# the tests need (Debian packages, pinned Go tools). tests/cmd/testrun runs
# go test, prints failures and every skip with its reason, and ends with
# "N passed, N failed, N skipped"; a test skips only when the machine lacks
# root, namespaces or Docker, and under CI (CI=true) a skip fails the run.
test: deps build lint
	scripts/interop.sh
	$(GO) build -o .cache/bin/testrun ./tests/cmd/testrun
	PATH=$(CURDIR)/.cache/bin:$$PATH SITESEC_BIN=$(CURDIR)/$(BIN) .cache/bin/testrun -count=1 -timeout 40m $(PKGS)

deps:
	scripts/deps.sh

# Each daemon's own tests and the test tools' (no namespaces, routers or
# peers: those are in `test` and `e2e`).
unit:
	$(GO) test -count=1 $(foreach m,$(filter-out tests,$(MODULES)),./$(m)/...) ./tests/cmd/...

lint:
	@scripts/lint.sh

proto-tools:
	GOBIN=$(CURDIR)/.cache/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

proto: proto-tools
	scripts/proto.sh proto

run: build
	$(BIN)/sitesecd --root $(CURDIR)/run/r0 $(if $(CONFIG),--config $(CONFIG))

images: build
	scripts/images.sh

e2e: build
	SITESEC_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 30m -v ./tests/...

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Whole-system benchmarks (tests/bench, build tag bench, root): sitesec
# against its anchors in the same run (wireguard-go, strongSwan). Narrow
# with BENCH=TestThroughput etc.; BENCH_REPS, BENCH_SECONDS, BENCH_CASES.
bench-net: build
	SITESEC_BIN=$(CURDIR)/$(BIN) $(GO) test -tags bench -count=1 -timeout 60m -v -run '$(or $(BENCH),.)' ./tests/bench

# IKE setup rate against strongSwan (issue 15 goal 2): builds strongSwan's
# load-tester plugin from Debian's source package once (scripts/loadtester.sh,
# into .cache/loadtester; apt-get build-dep and source, minutes), then
# tests/bench TestSetupRate. BENCH_SETUPS (1000), BENCH_INFLIGHT (4),
# BENCH_REPS (3), BENCH_CASES (one, many).
bench-setup: build
	SITESEC_LOADTESTER=$$(scripts/loadtester.sh) SITESEC_BIN=$(CURDIR)/$(BIN) $(GO) test -tags bench -count=1 -timeout 60m -v -run 'TestSetupRate' ./tests/bench

# Tunnels in one router (issue 15 goal 3): tests/bench TestScale with the
# same load-tester, BENCH_TUNNELS (10000) dynamic-endpoint clients kept
# up; reports RSS per tunnel, `show ... | count` times and a commit's
# effect on them (about 10 minutes here; not in `make test`). Profiles:
# KMD_HEAPPROFILE=/tmp/kmd-%d.heap FWDD_HEAPPROFILE=... (daemon.Profiler).
bench-scale: build
	SITESEC_LOADTESTER=$$(scripts/loadtester.sh) SITESEC_BIN=$(CURDIR)/$(BIN) $(GO) test -tags bench -count=1 -timeout 30m -v -run 'TestScale' ./tests/bench

fuzz:
	scripts/fuzz.sh 10s

clean:
	rm -rf $(BIN) .cache
