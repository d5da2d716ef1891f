# keylens — the two commands that matter are `make run` and `make test`.
SHELL := /usr/bin/env bash
export PATH := $(PATH):/usr/local/go/bin

GO       ?= go
BIN      := bin/keylens
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
FUZZTIME ?= 15s

.PHONY: all build run test fuzz bench callgrind vet fmt-check deps docker plugin clean screenshots

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/keylens

## run: start `keylens serve` on the embedded SQLite store (./data/keylens.db).
run:
	@test -x $(BIN) || echo "keylens: building $(BIN). The first build compiles SQLite (modernc.org/sqlite, SQLite's C code translated to Go: one very large package) and prints nothing for several minutes, more on a busy machine; later builds take seconds."
	@$(MAKE) --no-print-directory build
	@echo "keylens: admin console on http://127.0.0.1:3000/admin/ (sign in with the admin key it prints on first start, or KEYLENS_ADMIN_KEY),"
	@echo "         developer portal on http://127.0.0.1:3001/ (sign up, request keys; emails go to this log without --smtp-url),"
	@echo "         portal API on http://127.0.0.1:3000/api/, sidecar on http://127.0.0.1:8181 (Ctrl-C stops)"
	./$(BIN) serve

## test: install what the tests need, then vet, run every test with the race detector, and fuzz briefly.
test: deps vet fmt-check
	$(GO) test -race -count=1 ./...
	cd identity && $(GO) test -race -count=1 ./...
	cd plugin && GOWORK=$(PLUGIN_WORK) $(GO) test -race -count=1 ./...
	cd tests/tykdouble && GOWORK=$(PLUGIN_WORK) $(GO) test -count=1 ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=20000x

deps:
	@./scripts/test-deps.sh

## screenshots: photograph every console and developer portal screen at 1280x800 into docs/screenshots/ (the browser test, in chromium).
screenshots: deps
	KEYLENS_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run '^(TestConsoleInABrowser|TestPortalInABrowser)$$' ./tests/

# The plugin is tested in a workspace with a double of the gateway's packages
# (tests/tykdouble); its go.mod never names the gateway.
PLUGIN_WORK := $(CURDIR)/tests/tykdouble/go.work

vet:
	$(GO) vet ./...
	cd identity && $(GO) vet ./...
	cd plugin && GOWORK=$(PLUGIN_WORK) $(GO) vet ./...
	cd tests/tykdouble && GOWORK=$(PLUGIN_WORK) $(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## fuzz: run each fuzz target for FUZZTIME (default 15s).
# `make test` gives each target a count (20000x), not a duration: Go 1.26's
# fuzzing coordinator can report a bare "context deadline exceeded" failure,
# with no crashing input, when a duration runs out (golang/go#75804, fixed
# in Go 1.27). A count has no deadline to race. Such a failure after a
# longer `make fuzz FUZZTIME=5m` is that race if no input was written to
# testdata/fuzz.
fuzz:
	$(GO) test -run=NONE -fuzz='^FuzzHashKey$$' -fuzztime=$(FUZZTIME) ./
	$(GO) test -run=NONE -fuzz='^FuzzDeveloperJSON$$' -fuzztime=$(FUZZTIME) ./
	$(GO) test -run=NONE -fuzz='^FuzzParseGrace$$' -fuzztime=$(FUZZTIME) ./
	$(GO) test -run=NONE -fuzz='^FuzzDeveloperBodies$$' -fuzztime=$(FUZZTIME) ./rest/
	$(GO) test -run=NONE -fuzz='^FuzzResolve$$' -fuzztime=$(FUZZTIME) ./sidecar/
	cd identity && $(GO) test -run=NONE -fuzz='^FuzzHeaders$$' -fuzztime=$(FUZZTIME) .
	cd identity && $(GO) test -run=NONE -fuzz='^FuzzIsJWT$$' -fuzztime=$(FUZZTIME) .
	$(GO) test -run=NONE -fuzz='^FuzzParseHits$$' -fuzztime=$(FUZZTIME) ./sidecar/
	cd identity && $(GO) test -run=NONE -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./hits/
	$(GO) test -run=NONE -fuzz='^FuzzScanHitLog$$' -fuzztime=$(FUZZTIME) ./sqlstore/
	$(GO) test -run=NONE -fuzz='^FuzzOAuthForm$$' -fuzztime=$(FUZZTIME) ./sidecar/
	$(GO) test -run=NONE -fuzz='^FuzzParseJWKS$$' -fuzztime=$(FUZZTIME) ./sidecar/
	$(GO) test -run=NONE -fuzz='^FuzzAnalyticsPaths$$' -fuzztime=$(FUZZTIME) ./rest/
	$(GO) test -run=NONE -fuzz='^FuzzDecodeRecord$$' -fuzztime=$(FUZZTIME) ./tykanalytics/
	$(GO) test -run=NONE -fuzz='^FuzzCompare$$' -fuzztime=$(FUZZTIME) ./tykgateway/

## bench: resolver and analytics benchmarks, then the sidecar load benchmark against a bare fasthttp handler.
bench:
	$(GO) test -run=NONE -bench='ResolveHit|AuthHandler' -cpu 1,2 -count 5 ./sidecar/
	cd identity && $(GO) test -run=NONE -bench=KeyOf -count 5 ./cache/
	$(GO) test -run=NONE -bench='ResolveCold' -benchtime=5000x -count 5 ./sidecar/   # SQLite and PostgreSQL
	$(GO) test -run=NONE -bench='CachedIdentityMemory' -benchtime=1x -count 3 ./sidecar/
	cd identity && $(GO) test -run=NONE -bench='RecordExisting' -cpu 1,2 -count 5 ./hits/
	cd identity && $(GO) test -run=NONE -bench='Parse' -count 5 ./hits/
	$(GO) test -run=NONE -bench='ParseHits' -count 5 ./sidecar/
	$(GO) test -run=NONE -bench='HitsRefused' -benchtime=2000x -count 3 ./sidecar/
	$(GO) test -run=NONE -bench='Commit100k|CommitTx10k' -benchtime=3x -count 2 ./analytics/   # SQLite and PostgreSQL
	$(GO) test -run=NONE -bench='Compaction|QueryWithBacklog' -benchtime=2x -timeout 20m ./sqlstore/   # the hit log's compactor, and a query over a full log
	$(GO) test -run=NONE -bench='HitsFlood|AdminWritesDuringFlood|HitsFleet' -benchtime=1x -timeout 30m ./tests/   # over HTTP, SQLite and PostgreSQL
	$(GO) test -run=NONE -bench='AggregateYear' -benchtime=200x -timeout 60m ./analytics/
	$(GO) test -run=NONE -bench='DecodeCount' -cpu 1 -count 5 ./tykanalytics/
	$(GO) test -run=NONE -bench='Consume' -benchtime=3x -count 3 ./tykanalytics/
	cd plugin && GOWORK=$(PLUGIN_WORK) $(GO) test -run=NONE -bench=. -count 5 .
	$(GO) run ./tests/loadbench/cmd -pin -developers 100000 -rounds 41 -duration 1s

## callgrind: instructions per /auth request against a bare fasthttp handler, under valgrind
## (Debian: apt-get install -y valgrind). CALLGRIND_FLAGS="-out DIR" keeps the dumps for callgrind_annotate.
CALLGRIND_FLAGS ?=
callgrind:
	$(GO) run ./tests/loadbench/callgrind $(CALLGRIND_FLAGS)

docker:
	docker build -t keylens:$(VERSION) .

## plugin: build the Tyk Go plugin with Tyk's plugin compiler for TYK_VERSION:
## bin/keylens-plugin_$(TYK_VERSION)_linux_amd64.so.
TYK_VERSION ?= v5.8.1
plugin:
	docker build --target plugin --build-arg TYK_VERSION=$(TYK_VERSION) --output type=local,dest=bin .

clean:
	rm -rf bin
