# Firstparty — every entry point a person or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Workspace modules (go test ./... does not work at a go.work root without a root module).
MODULES := pkg proto $(wildcard services/*) $(wildcard tools)
SERVERS := deploy/local/servers.sh
STACK := deploy/local/stack.sh
# Exported so tests find the servers; FP_REQUIRE_SERVERS=1 turns a missing
# server into a failure instead of a skip.
WITH_SERVERS = set -a && . .local/servers.env && set +a && export FP_REQUIRE_SERVERS=1 &&
GOTEST_FLAGS ?= -race -count=1
FUZZTIME ?= 20s

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## install build and test tools (protoc, Chromium for browser-SDK tests) and the local servers
	@missing=""; \
	command -v protoc >/dev/null && [ -f /usr/include/google/protobuf/timestamp.proto ] || missing="$$missing protobuf-compiler libprotobuf-dev"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v node >/dev/null || missing="$$missing nodejs npm"; \
	command -v jq >/dev/null || missing="$$missing jq"; \
	if [ -n "$$missing" ]; then echo "installing$$missing from Debian"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) >/dev/null; fi
	@$(SERVERS) install

.PHONY: servers
servers: deps ## start Kafka, Redis and ClickHouse on loopback (idempotent)
	@$(SERVERS) start

.PHONY: up
up: servers ## start the servers and all six services in the background; writes .local/demo.env
	@$(STACK) start

.PHONY: demo
demo: up ## play a simulated shop through the stack: live rates, lag, merges, segment triggers, then ClickHouse queries (FP_DEMO_SECONDS=60)
	@cd tools && go run ./demo

.PHONY: down
down: ## stop the services and the servers that make up started
	@$(STACK) stop
	@$(SERVERS) stop

.PHONY: status
status: ## show what is running
	@$(SERVERS) status; $(STACK) status

.PHONY: build
build: ## build every service binary into bin/
	@$(STACK) build

.PHONY: test
test: servers ## unit and integration tests of every module against real servers
	@$(WITH_SERVERS) for m in $(MODULES); do \
		echo "=== $$m"; (cd $$m && go test $(GOTEST_FLAGS) ./...) || exit 1; done

.PHONY: unit
unit: ## unit tests only (no servers; integration tests skip)
	@for m in $(MODULES); do (cd $$m && go test -count=1 ./...) || exit 1; done

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each
	@for m in $(MODULES); do (cd $$m && for pkg in $$(go list ./...); do \
		for f in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "=== $$pkg $$f"; go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; done; done) || exit 1; done

.PHONY: bench
bench: servers ## the benchmark in one run (~7 min): each stage vs its server's own tool, the pipeline at rising rates; one table + .local/bench/bench.{json,png}
	@deploy/bench/bench.sh

.PHONY: bench-go
bench-go: servers ## Go benchmarks of every module against the real servers
	@$(WITH_SERVERS) for m in $(MODULES); do \
		(cd $$m && go test -run '^$$' -bench . -benchmem ./...) || exit 1; done

.PHONY: bench-stitcher
bench-stitcher: servers ## identity resolution events/s and Redis commands per event vs redis-benchmark, same run (.local/bench/stitcher.json)
	@deploy/bench/stitcher.sh

.PHONY: bench-loader
bench-loader: servers ## loader rows/s topic→table vs clickhouse-client inserting the same rows as TSV, in one run; loader peak memory (.local/bench/loader.json)
	@deploy/bench/loader.sh

.PHONY: bench-pipeline
bench-pipeline: servers ## whole pipeline at 1k and 5k events/s with 50 segments: latency to resolved/trigger/row, stage throughput, RSS (.local/bench/pipeline.json)
	@deploy/bench/pipeline.sh

.PHONY: bench-collector
bench-collector: servers ## collector events/s, p50/p99, peak RSS at batch 1/20/100 vs ProducerPerformance (.local/bench/collector.json)
	@deploy/bench/collector.sh

.PHONY: proto
proto: ## regenerate Go code from proto/ with the pinned generators
	@proto/generate.sh

.PHONY: lint
lint: ## gofmt and go vet
	@bad=$$(gofmt -l $(MODULES)); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && go vet ./...) || exit 1; done
