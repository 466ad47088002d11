# raftcore — developer targets. `make help` lists them.
GO        ?= go
PKGS      ?= ./...
GOBIN     := $(CURDIR)/.bin
GOGO_VER  := v1.3.2
STATICCHECK_VER := v0.8.2
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
# Pipelines fail when any command in them fails.
SHELL       := /bin/bash
.SHELLFLAGS := -o pipefail -c

# The invariants tag turns on the self-checks of the log, the hard state
# and the leader's per-peer progress (listed in invariants/doc.go).
TEST_TAGS := -tags invariants
# examples/kvstore is a module of its own (go.work joins it to the root)
# so that its dependencies (Prometheus) stay out of the library's.
KVSTORE := examples/kvstore

.PHONY: help test test-short mutation-check soak bench bench-compare fuzz proto proto-check lint verify cover example tools

help:
	@echo "make test     run every test (race detector, invariant checks on)"
	@echo "make example  run examples/single-mem-node"
	@echo "make bench    run the benchmarks (ns/op, B/op, allocs/op)"
	@echo "make bench-compare  the same workloads on etcd raft and raftcore, side by side (bench/compare)"
	@echo "make fuzz     run every fuzz target for FUZZTIME (default $(FUZZTIME))"
	@echo "make soak     long runs: the chaos simulation over SOAK_SEEDS seeds (default $(SOAK_SEEDS)), also on the WAL, the WAL crash loop and its power-loss crash points"
	@echo "make mutation-check  show the simulation catching deliberately broken rules"
	@echo "make lint     gofmt, go vet, staticcheck"
	@echo "make verify   lint + go mod tidy and make proto leave no diff"
	@echo "make proto    regenerate raftpb/raft.pb.go"
	@echo "make cover    test coverage summary (coverage.out)"

test:
	$(GO) test -race $(TEST_TAGS) -count=1 $(PKGS)
	$(GO) test $(TEST_TAGS) -count=1 -run '^(TestAllocsPerEntry|TestIdleFollowerHeap)$$' .
	@# Counts of Storage calls, which the invariants tag's cross-checks add to.
	$(GO) test -count=1 -run '^(TestRaftLog.*|TestLeaderCommitAsksStorageNoTerm)$$' .
	cd $(KVSTORE) && $(GO) test -race -count=1 ./...
	$(MAKE) --no-print-directory mutation-check

# The simulation must catch deliberately broken protocol rules (the
# raftmutation build tag switches them on).
mutation-check:
	$(GO) test -tags raftmutation -count=1 -run 'TestSimCatchesMutation' -v ./rafttest/ ./multiraft/ | grep -E 'seeds caught|^(ok|FAIL|---)'

# Thousands of simulation seeds across cluster sizes, PreVote and
# CheckQuorum, on every core; then the simulation on the WAL storage (on
# the real disk, then on a simulated one that loses unsynced writes), the
# SIGKILL crash loops and power-loss tests (SOAK_WAL_POWER_POINTS crash
# points) of the WAL and of the multi-group log, the multiraft simulation,
# and the kvstore example's kill-and-restart linearizability run with real
# processes. SOAK_SEEDS sets how many seeds.
SOAK_SEEDS ?= 5000
SOAK_WAL_ROUNDS ?= 500
SOAK_WAL_POWER_POINTS ?= 20000
soak:
	$(GO) test -count=1 -timeout 2h -run 'TestSimSoak' -v ./rafttest/ -soak -soak.seeds=$(SOAK_SEEDS) | grep -vE '^(=== RUN|--- PASS|PASS)'
	$(GO) test -count=1 -timeout 2h -run 'TestSimSoak' -v ./rafttest/ -soak -soak.wal -soak.seeds=$$(( $(SOAK_SEEDS) / 5 )) | grep -vE '^(=== RUN|--- PASS|PASS)'
	$(GO) test -count=1 -timeout 2h -run 'TestSimSoak' -v ./rafttest/ -soak -soak.walpower -soak.seeds=$$(( $(SOAK_SEEDS) / 5 )) | grep -vE '^(=== RUN|--- PASS|PASS)'
	$(GO) test -count=1 -timeout 2h -run 'TestCrashSafety|TestMultiCrashSafety' ./wal/ -wal.crash.rounds=$(SOAK_WAL_ROUNDS)
	$(GO) test -count=1 -timeout 2h -run 'TestPowerLoss$$|TestMultiPowerLoss$$|TestPowerLossAfterKill$$|TestMultiPowerLossAfterKill$$' -v ./wal/ -wal.power.points=$(SOAK_WAL_POWER_POINTS) | grep -E 'power_test.go|^(ok|FAIL|---)'
	$(GO) test -count=1 -timeout 2h -run 'TestSimulation' ./multiraft/ -multiraft.seeds=$$(( $(SOAK_SEEDS) / 10 ))
	cd $(KVSTORE) && $(GO) test -count=1 -timeout 1h -run 'TestE2ELinearizable' -v . -e2e.soak | grep -vE '^(=== RUN|PASS)'

test-short:
	$(GO) test $(TEST_TAGS) -short -count=1 $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

# bench/compare is a module of its own (with its own go.work), so that etcd
# raft, which it measures against, never enters the library's dependencies,
# go.work or ./... patterns.
bench-compare:
	cd bench/compare && $(GO) run . -rounds 5

# Each fuzz target runs on its own: go test -fuzz takes one target at a time.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for target in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

example:
	$(GO) run ./examples/single-mem-node

cover:
	$(GO) test $(TEST_TAGS) -count=1 -coverprofile=coverage.out $(PKGS)
	$(GO) tool cover -func=coverage.out | tail -1

# protoc comes from Debian's protobuf-compiler; gogo's plugin is pinned.
REFPB := raftpb/internal/raftpbref
MRPBREF := multiraft/multiraftpb/internal/multiraftpbref
proto: tools
	@command -v protoc >/dev/null || { apt-get update -qq && apt-get install -y -qq protobuf-compiler; }
	cd raftpb && PATH="$(GOBIN):$$PATH" protoc \
	  -I. -I"$$($(GO) list -m -f '{{.Dir}}' github.com/gogo/protobuf)" \
	  -I"$$($(GO) list -m -f '{{.Dir}}' github.com/gogo/protobuf)/protobuf" \
	  --gogo_out=paths=source_relative:. raft.proto
	PATH="$(GOBIN):$$PATH" protoc \
	  -I. -I"$$($(GO) list -m -f '{{.Dir}}' github.com/gogo/protobuf)" \
	  -I"$$($(GO) list -m -f '{{.Dir}}' github.com/gogo/protobuf)/protobuf" \
	  --gogo_out=paths=source_relative,Mraftpb/raft.proto=github.com/raftcore/raft/raftpb:. \
	  multiraft/multiraftpb/multiraft.proto
	@# The reference codec the tests compare the hand-written one against:
	@# raft.proto without the lines that turn the generated codec off.
	mkdir -p $(REFPB)
	{ echo '// Code generated by make proto from raftpb/raft.proto. DO NOT EDIT.'; \
	  sed -e '/hand-written codec$$/d' -e 's/^package raftpb;$$/package raftpbref;/' raftpb/raft.proto; } > $(REFPB)/raftref.proto
	cd $(REFPB) && PATH="$(GOBIN):$$PATH" protoc \
	  -I. -I"$$($(GO) list -m -f '{{.Dir}}' github.com/gogo/protobuf)" \
	  -I"$$($(GO) list -m -f '{{.Dir}}' github.com/gogo/protobuf)/protobuf" \
	  --gogo_out=paths=source_relative:. raftref.proto
	@# And multiraft.proto without the line that turns Batch's generated
	@# decoder off.
	mkdir -p $(MRPBREF)
	{ echo '// Code generated by make proto from multiraft/multiraftpb/multiraft.proto. DO NOT EDIT.'; \
	  sed -e '/hand-written decoder$$/d' -e 's/^package multiraftpb;$$/package multiraftpbref;/' \
	    -e 's|/multiraft/multiraftpb";$$|/multiraft/multiraftpb/internal/multiraftpbref";|' \
	    multiraft/multiraftpb/multiraft.proto; } > $(MRPBREF)/multiraftref.proto
	PATH="$(GOBIN):$$PATH" protoc \
	  -I. -I"$$($(GO) list -m -f '{{.Dir}}' github.com/gogo/protobuf)" \
	  -I"$$($(GO) list -m -f '{{.Dir}}' github.com/gogo/protobuf)/protobuf" \
	  --gogo_out=paths=source_relative,Mraftpb/raft.proto=github.com/raftcore/raft/raftpb:. \
	  $(MRPBREF)/multiraftref.proto

tools:
	@mkdir -p $(GOBIN)
	@test -x $(GOBIN)/protoc-gen-gogo || GOBIN=$(GOBIN) $(GO) install github.com/gogo/protobuf/protoc-gen-gogo@$(GOGO_VER)

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(TEST_TAGS) $(PKGS)
	cd $(KVSTORE) && $(GO) vet ./...
	@mkdir -p $(GOBIN)
	@test -x $(GOBIN)/staticcheck || GOBIN=$(GOBIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VER) || echo "staticcheck unavailable; skipped"
	@if [ -x $(GOBIN)/staticcheck ]; then $(GOBIN)/staticcheck $(PKGS) && cd $(KVSTORE) && $(GOBIN)/staticcheck ./...; fi

verify: lint proto
	$(GO) mod tidy
	cd $(KVSTORE) && $(GO) mod tidy
	@git diff --exit-code -- go.mod go.sum $(KVSTORE)/go.mod $(KVSTORE)/go.sum raftpb/raft.pb.go multiraft/multiraftpb/multiraft.pb.go $(REFPB) $(MRPBREF) || { echo "go mod tidy or make proto changed tracked files"; exit 1; }
