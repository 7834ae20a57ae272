# voicenav — the two commands of the README:
#   make run    set up what is missing, build, and start `voicenav serve` on the embedded defaults
#   make test   set up what is missing, then fmt, clippy and the whole test suite
# Set-up (scripts/setup.sh) is idempotent and quiet: Debian packages, libvosk, models.

SHELL := /bin/bash
# Keep build products between clones of the repository: a clean build compiles CTranslate2.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/voicenav/target
export CARGO_TERM_COLOR ?= never
CARGO ?= cargo
BIN := $(CARGO_TARGET_DIR)/debug/voicenav

.PHONY: run test setup build lint unit bench doctor

setup:
	@bash scripts/setup.sh

build: setup
	@$(CARGO) build --quiet --bins

run: build
	$(BIN) serve --config sip-config/voicenav.yaml

doctor: build
	$(BIN) doctor

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --quiet --all-targets -- -D warnings

unit: setup
	$(CARGO) test --no-fail-fast

test: lint unit

bench: build
	bash scripts/bench-all
