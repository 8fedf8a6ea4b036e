# Every target works on a fresh machine: it creates .venv and installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint clean

# Debian's chromium drives the serve page's browser test (Playwright's own browser downloads are not used);
# installed when missing and apt-get is available as root, otherwise that one test skips and says why.
CHROMIUM := /usr/bin/chromium

$(STAMP): pyproject.toml runtime/pyproject.toml
	@test -x $(CHROMIUM) || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium could not be installed: the browser test will skip"
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e ./runtime -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m instseg.demo --out demo_out

lint: $(STAMP)
	$(BIN)/ruff format --check instseg tests benchmarks configs
	$(BIN)/ruff check instseg tests benchmarks configs
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

clean:
	rm -rf $(VENV) demo_out .pytest_cache .mypy_cache .ruff_cache
