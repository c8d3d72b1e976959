# The two commands of the README:
#   make notebooks   set up (first time) and run every numbered notebook headless, quick mode
#   make test        set up (first time) and run the test suite
# Works as root or as a normal user; needs only python3 (3.10+) with venv.
PYTHON ?= python3
VENV   ?= .venv
EXTRAS ?= dev,piper,offline-whisper,baselines
PYTEST_ARGS ?=
BIN    := $(VENV)/bin

.PHONY: setup notebooks full test lab bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -m venv $(VENV) || { echo "error: '$(PYTHON) -m venv' failed; on Debian/Ubuntu: sudo apt-get install python3-venv"; exit 1; }
	$(BIN)/pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	$(BIN)/phonex doctor
	@touch $@

notebooks: setup
	$(BIN)/phonex notebooks

full: setup
	$(BIN)/phonex notebooks --full

test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

# the venv's kernel registered under the name "phonex" (the notebooks' kernel in JupyterLab)
lab: setup
	$(BIN)/python -m ipykernel install --sys-prefix --name phonex --display-name "phonex (.venv)"
	$(BIN)/jupyter lab notebooks/

bench: setup
	$(BIN)/python benchmarks/bench_synth.py
	$(BIN)/python benchmarks/bench_phonemize.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_recipe.py
	$(BIN)/python benchmarks/bench_recognition.py
	$(BIN)/python benchmarks/bench_alignment.py
	$(BIN)/python benchmarks/bench_probe.py
	$(BIN)/python benchmarks/bench_tts.py
	$(BIN)/python benchmarks/bench_baselines.py
	$(BIN)/python benchmarks/bench_whisper.py
	$(BIN)/python benchmarks/bench_acoustic.py
