# Set-up and test entry points. `make up` and `make test` each create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml setup.py | sha256sum | cut -c1-16)
# torch and torchvision are pinned together in one pip command (they must match).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: install up test lint chromium clean compose-test

install: $(STAMP)

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -e '.[web,worker,ml,client,dev]' $(TORCH_PINS)
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

up: install
	$(BIN)/humanseg up

chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		apt-get update && apt-get install -y chromium chromium-driver; \
	fi

test: install chromium
	$(BIN)/python -m pytest

# Build both images and run compose.yaml for real (Podman; root sets it up with apt). See
# docs/docker.md "Tested for real". COMPOSE_TEST_FLAGS=--skip-if-unavailable for CI.
compose-test: install
	$(BIN)/python scripts/compose_test.py $(COMPOSE_TEST_FLAGS)

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
