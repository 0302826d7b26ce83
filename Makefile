# flowgate: two commands do everything on a fresh Debian 12 machine.
#   make run   install what is missing, build, start on config/default.toml
#   make test  install what is missing, run every test
# Both are idempotent and say what they do.

# Where scripts/ensure-deps.sh installs rustup when the machine has no Rust.
export PATH := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin:$(PATH)

CONFIG ?= config/default.toml
CARGO  ?= cargo
BIN    := target/release/flowgate

VENV   := .venv

.PHONY: run test build deps deps-test hugepages lint venv pytest fuzz-smoke bench clean

deps:
	@scripts/ensure-deps.sh run

deps-test:
	@scripts/ensure-deps.sh test

hugepages:
	@scripts/hugepages.sh 1024

build: deps
	@echo "build: cargo build --release"
	@$(CARGO) build --release --workspace --bins

run: build hugepages
	@echo "run: $(BIN) run --config $(CONFIG)   (API on the address in [api] listen, default http://127.0.0.1:8080)"
	@exec $(BIN) run --config $(CONFIG)

lint: deps
	@echo "lint: cargo fmt --check; cargo clippy --all-targets -D warnings"
	@$(CARGO) fmt --all --check
	@$(CARGO) clippy --release --workspace --all-targets -q -- -D warnings

venv: deps-test
	@if [ ! -x $(VENV)/bin/pytest ] || [ tests/python/requirements.txt -nt $(VENV)/.installed ]; then \
	  echo "venv: creating $(VENV) with boto3, awscli, pytest, prometheus_client (PyPI)"; \
	  python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -r tests/python/requirements.txt && touch $(VENV)/.installed; \
	else echo "venv: $(VENV) is up to date"; fi

pytest: venv
	@echo "pytest: API tests with boto3, the aws CLI and curl against the real binary"
	@$(CARGO) build --release --workspace --bins -q
	@PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/pytest -q tests/python

test: deps-test hugepages lint venv
	@echo "test: cargo test --release --workspace (unit, property and integration tests on DPDK virtual devices)"
	@FLOWGATE_REQUIRE_HUGEPAGES=$$(scripts/hugepages.sh --can-reserve) $(CARGO) test --release --workspace
	@$(MAKE) --no-print-directory pytest
	@$(MAKE) --no-print-directory fuzz-smoke

fuzz-smoke: deps-test
	@echo "fuzz-smoke: every cargo-fuzz target on its corpus plus $${FUZZ_SECONDS:-10}s of fuzzing"
	@scripts/fuzz-smoke.sh

bench: deps venv
	@scripts/ensure-deps.sh bench
	@echo "bench: cargo build --release (flowgate, flowgate-pcapgen)"
	@$(CARGO) build --release --workspace --bins -q
	@scripts/hugepages.sh 1024
	@echo "bench: benches/run.py $(BENCH_ARGS) (flowgate vs dpdk-testpmd on the same devices, lcore and captures; writes benches/RESULTS.md)"
	@$(VENV)/bin/python benches/run.py $(if $(BENCH_QUICK),--quick) $(BENCH_ARGS)

clean:
	$(CARGO) clean
