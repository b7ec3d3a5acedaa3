# Two commands for a new user: `make demo` and `make test`. Each sets up the
# local virtual environment (.venv) first, from pyproject.toml and the exact pins
# in constraints.txt, using only Python and make.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: help install demo test test-slow lint typecheck format bench fuzz pcaps view-map clean

help:
	@echo "make demo       set up .venv and run the main job (linkstack demo)"
	@echo "make test       set up .venv and run lint, the type check and the whole test suite"
	@echo "make test-slow  the full-size fuzzing and other slow checks"
	@echo "make bench      run the benchmarks (linkstack bench all)"
	@echo "make fuzz       fuzz every decoder with 100,000 inputs each"
	@echo "make mutate     mutation testing of the codecs, COP-1 and channels/ (slow; not in make test)"
	@echo "                MODULES=linkstack/ccsds/tc.py ... SAMPLE=N SEED=S LINES=80,160-170 JOBS=J"
	@echo "                to do less or more at once (LINES: only the mutants on those lines)"
	@echo "make pcaps      regenerate the sample captures of pcaps/"
	@echo "make tools      install tshark, mosquitto, openssl, chromium when missing (root, apt)"
	@echo "make view-map   regenerate the live view's map outlines (npm's world-atlas)"
	@echo "make lint       ruff check and format check"
	@echo "make typecheck  mypy over the tree, strict on linkstack/ccsds and channels (pyproject.toml)"
	@echo "make clean      remove .venv and build leftovers"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "linkstack needs Python >= 3.11, this is " + sys.version'
	$(PYTHON) -m venv $(VENV)
	@# torch first, pinned: a CPU build where pip finds one (see README), so that the
	@# qwen extra never pulls the registry's default GPU build
	$(PIP) install --quiet -c constraints.txt torch
	$(PIP) install --quiet -c constraints.txt -e '.[qwen,sweep,test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/linkstack demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# What mypy checks, and how strictly, is in pyproject.toml ([tool.mypy]).
typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# System tools the tests run for real: tshark (the Wireshark checks,
# tests/capture/test_wireshark.py), mosquitto (the MQTT broker of the daemon tests) and
# openssl (the certificates of the MQTT TLS tests, tests/daemon/test_mqtt_security.py) and
# chromium (the live view's browser test, tests/daemon/test_live_view.py: Playwright
# drives Debian's /usr/bin/chromium and downloads no browser).
# Install what is missing when we are root on Debian/Ubuntu (the debconf answer
# keeps dumpcap without setuid and apt quiet; mosquitto's own service is stopped,
# the tests start brokers of their own); otherwise say how. Either way the tests
# that need a missing tool fail, with the same advice.
.PHONY: tools
tools:
	@missing=""; \
	command -v tshark >/dev/null 2>&1 || missing="$$missing tshark"; \
	{ command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; } || missing="$$missing mosquitto"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make: installing$$missing (apt-get) for the tests"; \
	    if command -v debconf-set-selections >/dev/null 2>&1; then \
	      echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections; \
	    fi; \
	    (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing) \
	      || echo "make: installing$$missing failed; the tests that need it will fail"; \
	    if echo "$$missing" | grep -q mosquitto; then \
	      (service mosquitto stop || true) >/dev/null 2>&1; \
	    fi; \
	  else \
	    echo "make: not installed:$$missing; the tests that need it will fail. Install it:"; \
	    echo "      sudo apt-get install tshark mosquitto openssl chromium (Debian/Ubuntu), sudo dnf"; \
	    echo "      install wireshark-cli mosquitto openssl chromium (Fedora), brew install wireshark"; \
	    echo "      mosquitto (macOS; the browser test wants /usr/bin/chromium);"; \
	    echo "      or run make test as root on Debian."; \
	  fi; \
	fi

test: tools

# pytest exits 5 when it collected no tests; say so, and fail. The tests run on one
# worker more than the cores (pytest-xdist): the daemon tests spend part of their time
# waiting on their processes and sockets, and the cores stood idle 15 % of a run with a
# worker a core. mypy runs beside them (its 50 s of one core would otherwise come
# first); its verdict counts.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
test: lint $(STAMP)
	@$(BIN)/mypy > $(VENV)/typecheck.log 2>&1 & mypy_pid=$$!; \
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests; that is a failure"; fi; \
	wait $$mypy_pid; mypy_rc=$$?; echo "mypy:"; cat $(VENV)/typecheck.log; \
	if [ $$mypy_rc -ne 0 ]; then echo "make test: mypy found type errors"; rc=1; fi; \
	exit $$rc

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow --run-slow

bench: $(STAMP)
	$(BIN)/linkstack bench all

fuzz: $(STAMP)
	$(BIN)/linkstack fuzz --iterations 100000

# Mutation testing (issue 21): small bugs injected one at a time into each codec,
# state machine and channel model, each run against the tests that import the module;
# per-module scores, the survivors, and a reviewed list of equivalent mutants
# (linkstack/tools/mutate/equivalents.toml). Our own driver (stdlib and coverage.py,
# which finds the tests that execute each mutant's line): mutmut 3 spent over 10
# minutes instrumenting the tree on this 2-core machine before running a test, and
# cosmic-ray mutates the files of the working tree in place, which a checkout shared
# with other work cannot allow. Hours for every module at once: MODULES= and SAMPLE=
# (with SEED=) do less.
MODULES ?=
SAMPLE ?=
SEED ?= 0
LINES ?=
JOBS ?= 1
mutate: $(STAMP)
	$(BIN)/python -m linkstack.tools.mutate $(MODULES) --jobs $(JOBS) \
	  $(if $(SAMPLE),--sample $(SAMPLE) --seed $(SEED)) $(if $(LINES),--lines $(LINES))

pcaps: $(STAMP)
	$(BIN)/linkstack capture-samples --out pcaps

# The live view's map outlines (linkstack/daemon/view_assets/land.json, committed):
# Natural Earth's 1:110m land from the npm package world-atlas (ISC), fetched with npm
# into build/ and decoded to the page's compact form. Only to refresh it: building,
# testing and running need neither npm nor the network.
WORLD_ATLAS := world-atlas@2.0.2
view-map: $(STAMP)
	mkdir -p build/world-atlas
	cd build/world-atlas && npm pack --silent $(WORLD_ATLAS) && tar xzf world-atlas-2.0.2.tgz
	$(BIN)/python -m linkstack.tools.land_asset build/world-atlas/package/land-110m.json \
	  linkstack/daemon/view_assets/land.json

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
