# The resident importer. `make help` lists the targets.

GO       ?= go
BIN      ?= bin/importer
PKGS     := ./...
GOFLAGS_TEST ?= -race -count=1 -parallel 8 -timeout 25m

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/importer
	$(GO) build -o $(BIN) ./cmd/importer

.PHONY: test-deps
test-deps: ## install Azurite, the Azure Storage emulator the azblob:// tests start, into internal/fetchtest/azurite (once; npm)
	@if [ ! -x internal/fetchtest/azurite/node_modules/.bin/azurite-blob ]; then \
	  if command -v npm >/dev/null 2>&1; then npm ci --prefix internal/fetchtest/azurite --no-audit --no-fund --loglevel=error; \
	  else echo "npm not found: the azblob:// tests will be skipped (CI installs Node.js)"; fi; \
	fi

.PHONY: test
test: test-deps ## run every test, in parallel, against a real redis-server (a database per test) and the sandbox over HTTP, then fuzz each parser briefly (under 4 minutes on 2 cores)
	$(GO) test $(GOFLAGS_TEST) $(PKGS)
	@# A count, not a duration: with a duration, go1.26's fuzz coordinator can
	@# fail a target with "context deadline exceeded" at the deadline on a busy
	@# machine, having found nothing (golang/go#75804, fixed in go1.27).
	@$(MAKE) --no-print-directory fuzz FUZZTIME=10000x

.PHONY: lint
lint: ## gofmt, go vet, the import layering (importer ← internal/* ← jobs ← cmd), staticcheck and errcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) test -count=1 ./internal/layers
	$(GO) tool staticcheck $(PKGS)
	$(GO) tool errcheck -ignoretests -exclude .ci/errcheck-exclude $(PKGS)

BENCH_FLAGS ?=

.PHONY: bench
bench: build ## measure the importer beside its baselines on real processes (redis-server, sandbox, workers; about 8 minutes): a table, bench/results.json
	$(GO) build -o bin/importer-bench ./cmd/importer-bench
	bin/importer-bench -bin $(BIN) -out bench/results.json $(BENCH_FLAGS)

.PHONY: bench-profile
bench-profile: build ## the pipeline scenario once, with CPU and heap profiles of a worker in bench/profiles/
	$(GO) build -o bin/importer-bench ./cmd/importer-bench
	bin/importer-bench -bin $(BIN) -scenarios pipeline -repeat 1 -profile bench/profiles -out bench/profiles/results.json
	$(GO) tool pprof -top -nodecount 25 $(BIN) bench/profiles/worker.cpu.pprof

.PHONY: bench-go
bench-go: ## Go micro-benchmarks: reading, validating, storing and reporting rows
	$(GO) test -run '^$$' -bench . -skip BenchmarkAPIBudget -benchmem $(PKGS)

.PHONY: bench-api
bench-api: ## spend the API budget through three workers: polling, webhooks with each DATA_NEW behaviour, contracts of 60 and 600 a minute read from the answers, the latter also with windows starting at :23 (about 18 minutes)
	$(GO) test -run '^$$' -bench BenchmarkAPIBudget -benchtime 1x -timeout 60m ./jobs

FUZZTIME ?= 1m
FUZZ_TARGETS := FuzzCSV:./internal/source FuzzJSON:./internal/source FuzzNDJSON:./internal/source \
	FuzzFieldFor:./importer FuzzValidate:./importer FuzzLifecycle:./importer FuzzParse:./internal/webhook FuzzDecodeChunk:./internal/store

.PHONY: fuzz
fuzz: ## fuzz every parser (CSV, JSON, NDJSON, headers, validation, webhooks) for FUZZTIME each (default 1m; or a count of inputs, 10000x)
	@for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; \
		echo "fuzzing $$name ($$pkg): $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

.PHONY: chaos
chaos: ## the chaos suite at full size, with its long scenarios (workers killed over and over, Redis restarted and frozen, a Sentinel failover): about 22 minutes
	IMPORTER_E2E_RACE=1 $(GO) test -run Chaos -v -count=1 -timeout 60m ./cmd/importer -chaos 2>&1 | grep -E '^(=== RUN|--- |    (chaos|failover)_test|ok|FAIL)'

.PHONY: run-sample
run-sample: build ## import samples/residents.csv with nothing configured (in-process Redis, workers and sandbox)
	$(BIN) run samples/residents.csv

.PHONY: run-errors
run-errors: build ## import samples/residents-with-errors.csv: every kind of outcome, exit code 1
	-$(BIN) run samples/residents-with-errors.csv

.PHONY: up
up: ## start the whole stack with docker compose: Redis, sandbox, two workers, scheduler, webhooks, dashboard
	docker compose up --build -d

.PHONY: down
down: ## stop the compose stack
	docker compose down

.PHONY: clean
clean: ## remove bin/ and reports/
	rm -rf bin reports
