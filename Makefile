# oseod developer entry points (GNU make).
#
#   make install                                  .venv with oseod alone, no test tools: what the
#                                                 systemd unit runs (README, "Production with systemd")
#   make run   [ARGS='--config etc/oseod.toml']   run the daemon in the foreground
#   make test  [PYTEST_ARGS='-k users -x']        mypy on oseod/ (+ plugin), then all of pytest
#   make bench [BENCH_ARGS='--duration 5']        GetCapabilities vs. a bare Klein echo
#   make bench-ordering [BENCH_ARGS='--only submit']  Submit, GetStatus, search vs. the echo;
#                       [LATENCY_ARGS='--rate 40']    then GetStatus latency while the engine works;
#                       [ODATA_ARGS='--duration 5']   then OData create/get-by-id beside Submit/GetStatus,
#                                                     and the OData $filter search at 10^5 / 10^2 orders
#   make bench-engine [BENCH_ARGS='--workers 16']     items/s through the processing engine
#   make bench-downloads [BENCH_ARGS='--rounds 9']    1 GiB over FTP(S), HTTP, SFTP vs. vsftpd, nginx, sshd
#   make bench-callbacks [BENCH_ARGS='--only submit']  call-backs/s to a loopback client; Submit All vs None
#   make chaos [CHAOS_ARGS='--seed 7']               kill/stop Redis and daemons under load; check invariants
#   make bench-ha [BENCH_ARGS='--duration 5']         Submit with min_replicas 1 vs 0; failover window
#   make clean                                    remove the venv and build/test debris
#
# Every target works from a clean checkout: it creates .venv with $(PYTHON) and
# installs the checkout into it (editable) with the exact versions in
# constraints.txt. The install is redone only when setup.cfg, pyproject.toml or
# constraints.txt change (the stamp file below), so repeated runs are quick.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.oseod-installed
INSTALLED := $(VENV)/.oseod-production
ARGS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=
CHAOS_ARGS ?=
ODATA_ARGS ?=

# Keep pip quiet about its own version and never prompt (CI has no stdin).
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
.PHONY: help venv install run test bench bench-ordering bench-engine bench-downloads bench-callbacks chaos bench-ha clean

help:
	@sed -n '3,17p' Makefile

venv: $(STAMP)

# The production install (README, "Production with systemd"), run as root in
# the checkout the unit names: oseod and what it runs on, without the test
# extras (pytest, mypy, type stubs) the targets below add to the same venv.
# The plugin check writes Twisted's plugin cache, which the service cannot
# (ProtectSystem=strict).
install: $(INSTALLED)
	@echo "oseod is installed in $(abspath $(VENV)): $(abspath $(BIN))/twistd -n oseod"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Why each flag:
# - pip and setuptools come first, pinned by constraints.txt, and the project is
#   then built with --no-build-isolation: the build uses that pinned setuptools
#   instead of whatever is newest on the index, so the install is reproducible
#   (constraints do not reach an isolated build environment).
# - editable_mode=compat makes setuptools write a plain .pth with the checkout
#   root. twistd finds plugins by scanning sys.path directories for
#   twisted/plugins/, so it needs the root itself on sys.path; the default
#   (import-hook) editable modes hide it and `twistd --help` would not list
#   oseod. mypy also cannot follow import hooks. setuptools calls compat
#   "transitional": if a future pinned setuptools drops it, a .pth file with
#   $(CURDIR) in site-packages does the same job.
# - The last step proves the point instead of assuming it. grep reads all of
#   twistd's output (no -q): with -q it would stop at the first match and
#   twistd, still writing, would die of a BrokenPipeError traceback.
define install_checkout
	$(BIN)/python -m pip install --upgrade -c constraints.txt pip setuptools
	$(BIN)/python -m pip install -c constraints.txt --no-build-isolation \
	    --config-settings editable_mode=compat -e '$(1)'
	@cd / && $(abspath $(BIN))/twistd --help | grep -w oseod >/dev/null \
	    || { echo "error: twistd in $(VENV) does not list the oseod plugin" >&2; exit 1; }
	@touch $@
endef

$(STAMP): setup.cfg pyproject.toml constraints.txt | $(BIN)/python
	$(call install_checkout,.[test])

$(INSTALLED): setup.cfg pyproject.toml constraints.txt | $(BIN)/python
	$(call install_checkout,.)

run: $(STAMP)
	$(BIN)/twistd -n --pidfile= --logger oseod.logs.text_stdout oseod $(ARGS)

# mypy and pytest both run even when the first fails, so one `make test` shows
# every problem and pytest's summary line is always printed; the target fails if
# either failed. pytest exit code 5 means "no tests collected" (e.g. a -k that
# matches nothing): reported, not treated as a failure.
test: $(STAMP)
	@status=0; \
	echo "== mypy oseod twisted/plugins/oseod_plugin.py"; \
	$(BIN)/mypy oseod twisted/plugins/oseod_plugin.py || status=1; \
	echo "== pytest $(PYTEST_ARGS)"; \
	$(BIN)/pytest $(PYTEST_ARGS) || { rc=$$?; \
	    if [ $$rc -eq 5 ]; then echo "pytest: no tests were collected"; else status=$$rc; fi; }; \
	exit $$status

bench: $(STAMP)
	$(BIN)/python bench/capabilities.py $(BENCH_ARGS)

# About 3 minutes: a worker daemon makes the Submit load's orders, and 10^5
# orders are stored for the search measurement. Then, about 1 minute:
# GetStatus latency in a daemon that also processes, idle and while its
# engine makes 20,000 items (bench/latency.py). Then, about 1 minute: OData
# ProductionOrder create and get-by-id beside SOAP Submit and GetStatus, each
# as a ratio to the echo (bench/odata_orders.py; needs wrk); then, about 2 minutes,
# the OData $filter search at 10^5 stored orders / at 10^2 (bench/odata_search.py).
bench-ordering: $(STAMP)
	$(BIN)/python bench/ordering.py $(BENCH_ARGS)
	$(BIN)/python bench/latency.py $(LATENCY_ARGS)
	$(BIN)/python bench/odata_orders.py $(ODATA_ARGS)
	$(BIN)/python bench/odata_search.py

bench-engine: $(STAMP)
	$(BIN)/python bench/engine.py $(BENCH_ARGS)

# About 3 minutes; needs curl, and vsftpd, nginx and sshd as baselines (Debian:
# apt-get install vsftpd nginx-light openssh-server curl); says so when one is missing.
bench-downloads: $(STAMP)
	$(BIN)/python bench/downloads.py $(BENCH_ARGS)

# About 2 minutes: 2,000 orders' call-backs to a receiver on loopback, its own
# ceiling, then Submit with statusNotification None and All on a front daemon.
bench-callbacks: $(STAMP)
	$(BIN)/python bench/callbacks.py $(BENCH_ARGS)

# About 4 minutes: primary + replica + 3 sentinels, 2 front daemons and a
# worker under load, 5 seeded events (SIGKILL/SIGSTOP of the primary, SIGKILL
# and SIGTERM of daemons), then the invariants; exit status 1 if one fails.
chaos: $(STAMP)
	$(BIN)/python bench/chaos.py $(CHAOS_ARGS)

# About 2 minutes: Submit req/s with [redis] min_replicas = 1 / 0 on a primary
# and a replica, the Redis time per Submit, and a failover's window.
bench-ha: $(STAMP)
	$(BIN)/python bench/bench_ha.py $(BENCH_ARGS)

# var/ (the demo data dir of a plain `twistd -n oseod`) and bench/results/ are
# data, not debris: remove them by hand if you mean to.
clean:
	rm -rf $(VENV) build dist .mypy_cache .pytest_cache *.egg-info
	find . -path ./.git -prune -o \( -name __pycache__ -o -name dropin.cache \) \
	    -prune -exec rm -rf {} +
