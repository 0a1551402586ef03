# fanout: run `make help` for the targets.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/fanout
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/fanout ./cmd/fanout

.PHONY: run
run: ## send the sample SMS campaign end to end (embedded Redis, OneRoute sandbox)
	$(GO) run ./cmd/fanout run --sandbox examples/sms.yaml

.PHONY: test
test: ## run every test with the race detector (real redis-server when installed, miniredis otherwise)
	$(GO) test -race -count=1 ./...

.PHONY: test-miniredis
test-miniredis: ## run the tests on miniredis even when redis-server is installed
	FANOUT_TEST_REDIS=miniredis $(GO) test -count=1 ./...

.PHONY: e2e
e2e: ## the monitor in headless Chromium (apt-get install -y chromium); screenshots in e2e-out/
	mkdir -p e2e-out
	FANOUT_E2E=1 FANOUT_E2E_OUT=e2e-out $(GO) test -count=1 -run 'TestMonitorBrowser' -v ./cmd/fanout
	@ls -1 e2e-out/*.png

.PHONY: vet
vet: ## go vet
	$(GO) vet ./...

# golangci-lint, built from the Go module proxy at a pinned version into bin/
# (ignored by git) on first use and reused after; .golangci.yml configures it.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT         := bin/golangci-lint-$(GOLANGCI_LINT_VERSION)

.PHONY: lint
lint: vet $(GOLANGCI_LINT) ## gofmt check, go vet and golangci-lint (gosec, errcheck, staticcheck, ...; see .golangci.yml)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	GOBIN=$(CURDIR)/$@.d $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	mv $@.d/golangci-lint $@ && rmdir $@.d

.PHONY: bench
bench: bench-bin ## the benchmark report: every scenario beside its baseline (about 15 minutes); writes docs/benchmarks.md, bench/results.json, docs/bench-pacing.svg
	$(GO) run ./bench/report -bin bench-out/bin $(BENCHFLAGS)

.PHONY: bench-quick
bench-quick: bench-bin ## a one-round, 20,000-message version of make bench (a smoke test of the report, about 4 minutes)
	$(GO) run ./bench/report -bin bench-out/bin -quick -micro=false -md bench-out/benchmarks.md -json bench-out/results.json -svg bench-out/bench-pacing.svg

.PHONY: bench-bin
bench-bin: ## build the binaries the benchmarks run into bench-out/bin
	mkdir -p bench-out/bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bench-out/bin/fanout ./cmd/fanout
	for p in e2e plain noop arrivals; do $(GO) build -o bench-out/bin/$$p ./bench/$$p || exit 1; done

.PHONY: bench-dispatch
bench-dispatch: ## the 1,000,000-row dispatch benchmark and its peak RSS
	mkdir -p bench-out
	bash bench/dispatch-rss.sh | tee bench-out/dispatch-rss.txt

.PHONY: bench-sandbox
bench-sandbox: ## the sandbox's SMS-send rate on loopback (target: 40,000 req/s), median of 5
	mkdir -p bench-out
	$(GO) test -run '^$$' -bench BenchmarkSandboxSMSSend -benchtime 400000x -count 5 ./oneroute/sandbox | tee bench-out/sandbox.txt

.PHONY: bench-webhooks
bench-webhooks: ## the webhook receiver and applier: 100,000 signed delivery reports at 5,000/s, then closed loop (events/s, p99, CPU per event)
	mkdir -p bench-out
	$(GO) run ./bench/webhooks -n 100000 -rate 5000 -out bench-out/webhooks.jsonl | tee bench-out/webhooks.txt
	$(GO) run ./bench/webhooks -n 100000 -rate 0 -out bench-out/webhooks.jsonl | tee -a bench-out/webhooks.txt

.PHONY: fuzz
# A target that fails with a bare "context deadline exceeded" at the end of
# its -fuzztime and writes no failing input met Go's own fuzz-coordinator race
# (go.dev/issue/75804, not fixed in go1.26): it is run once more, and fails
# only if that fails too. Any other failure fails at once.
fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	@log=$$(mktemp); trap 'rm -f $$log' EXIT; \
	for t in $$(grep -rhoE '^func (Fuzz[A-Za-z0-9_]+)' --include='*_test.go' . | sed 's/func //'); do \
	  pkg=$$(grep -rlE "^func $$t\(" --include='*_test.go' . | xargs dirname); \
	  for try in 1 2; do \
	    echo "== $$pkg $$t"; \
	    if $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $${FUZZTIME:-30s} $$pkg >$$log 2>&1; then cat $$log; break; fi; \
	    cat $$log; \
	    if [ $$try = 1 ] && grep -q 'context deadline exceeded' $$log && ! grep -qE 'Failing input written|panic:|_test.go:[0-9]+:' $$log; then \
	      echo "== $$t: the fuzz coordinator's deadline race (go.dev/issue/75804), no failing input: once more"; continue; fi; \
	    exit 1; \
	  done; \
	done

COMPOSE ?= docker compose -f deploy/compose.yaml --env-file deploy/.env

.PHONY: image
image: ## build the container image fanout:$(VERSION) (needs Docker)
	docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) \
	  --build-arg REVISION=$$(git rev-parse HEAD) --build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) \
	  -t fanout:$(VERSION) .

.PHONY: compose-up
compose-up: deploy/.env ## start Redis, the sandbox, two workers and the monitor (127.0.0.1:8080) with Docker Compose
	FANOUT_VERSION=$(VERSION) $(COMPOSE) up --build --detach --wait

.PHONY: compose-dispatch
compose-dispatch: deploy/.env ## dispatch examples/sms.yaml to the compose stack
	FANOUT_VERSION=$(VERSION) $(COMPOSE) run --rm dispatch

.PHONY: compose-down
compose-down: deploy/.env ## stop the compose stack (add COMPOSE_DOWN_FLAGS=--volumes to drop Redis's data)
	FANOUT_VERSION=$(VERSION) $(COMPOSE) down $(COMPOSE_DOWN_FLAGS)

deploy/.env:
	@echo "deploy/.env is missing: cp deploy/.env.example deploy/.env and set its passwords" >&2; exit 1

.PHONY: tidy
tidy: ## go mod tidy
	$(GO) mod tidy

.PHONY: chaos-rate
chaos-rate: ## ratelimit: two worker processes, one redis-server, 200/s for 60 s (issue 5 proof)
	FANOUT_LONG=1 $(GO) test -count=1 -v -run '^TestTwoProcessAccuracyLong$$' ./ratelimit

.PHONY: chaos-pace
chaos-pace: ## pacing at arrival: three workers, 3,000 SMS + 3,000 WhatsApp templates at 200/s burst 20, measured at the provider
	FANOUT_LONG=1 $(GO) test -count=1 -v -run '^TestPacingAtArrival$$' ./worker

.PHONY: chaos-delivery
chaos-delivery: ## delivery: 10k-recipient provider-fault soak, SIGTERM during a 5 s send, SIGKILL mid-batch
	FANOUT_CHAOS=1 $(GO) test -count=1 -v -timeout 30m -run '^(TestSoakWithProviderFaults|TestSIGTERMDuringSlowSend|TestSIGKILLMidBatch)$$' ./cmd/fanout

.PHONY: chaos-loss
chaos-loss: ## Redis restored from a 1.5 s-old AOF mid-campaign (5,000 SMS, 2 workers), with and without verification (FANOUT_LOSS_RUNS=3 repeats the defended run); Redis SIGKILLed and restarted from its own AOF
	FANOUT_CHAOS=1 $(GO) test -count=1 -v -timeout 30m -run '^(TestRedisRestoredFromOldAOF|TestRedisSIGKILLWithAOF)$$' ./cmd/fanout

.PHONY: chaos-strand
chaos-strand: ## stranded campaigns and ambiguous gateways: deleted and archived tasks, cancel, 502/504 after accept at 10% (5,000 SMS)
	FANOUT_CHAOS=1 $(GO) test -count=1 -v -timeout 30m -run '^(TestDeletedAndArchivedTasksDoNotStrand|TestCancelSettlesRowsOfDeletedTasks|TestGatewayErrorAfterAcceptSendsNoDuplicate)$$' ./cmd/fanout

.PHONY: chaos-kill
chaos-kill: ## kill soaks, side by side: 20,000 SMS, 3 worker processes, 20 SIGKILLs; 1,000 SMS at 5 s provider latency, 20 rolling SIGTERMs (about 3 minutes)
	FANOUT_CHAOS=1 $(GO) test -count=1 -v -timeout 30m -run '^TestKillSoak$$' ./cmd/fanout

.PHONY: chaos-stall
chaos-stall: ## a 45 s Redis stall (SIGSTOP) mid-campaign: work resumes within 10 s, nothing failed or sent twice
	FANOUT_CHAOS=1 $(GO) test -count=1 -v -timeout 30m -run '^TestRedisStallResumesQuickly$$' ./cmd/fanout

.PHONY: chaos-crash
chaos-crash: ## dispatcher crash and rerun: 10 SIGKILLs of a real dispatcher at random batches, each rerun leaves exactly one task per batch
	FANOUT_CHAOS=1 $(GO) test -count=1 -v -timeout 10m -run '^TestResumeAfterKill$$' ./dispatcher

.PHONY: chaos-fuzz
chaos-fuzz: ## hostile input files and specs, then every fuzz target for CHAOS_FUZZTIME (default 5s)
	$(GO) test -count=1 -v -run '^(TestHostileSpecsAreRefusedAtLoad|TestHostileTemplatesDryRun)$$' ./campaigns ./cmd/fanout
	$(MAKE) --no-print-directory fuzz FUZZTIME=$${CHAOS_FUZZTIME:-5s}

# The fault-injection tests of cmd/fanout (delivery, strand, loss, stall)
# run in one go test, in parallel: each has its own redis-server, sandbox
# and workers, and most of their time is spent waiting (leases, expiries).
CHAOS_FAULTS = TestSoakWithProviderFaults|TestSIGTERMDuringSlowSend|TestSIGKILLMidBatch|TestDeletedAndArchivedTasksDoNotStrand|TestCancelSettlesRowsOfDeletedTasks|TestGatewayErrorAfterAcceptSendsNoDuplicate|TestRedisRestoredFromOldAOF|TestRedisSIGKILLWithAOF|TestRedisStallResumesQuickly

.PHONY: chaos-faults
chaos-faults: ## chaos-delivery, chaos-strand, chaos-loss and chaos-stall at once, in parallel (what make chaos runs)
	FANOUT_CHAOS=1 $(GO) test -count=1 -v -timeout 30m -parallel 16 -run '^($(CHAOS_FAULTS))$$' ./cmd/fanout

.PHONY: chaos
chaos: chaos-rate chaos-pace chaos-kill chaos-faults chaos-crash chaos-fuzz ## long and failure-injection tests (needs redis-server), under 15 minutes
