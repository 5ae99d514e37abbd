# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv if needed.
PYTHON ?= python3
VENV ?= .venv
DATA ?= ../shared/data/pbc_neutrophil_64.npz
DEMO_OUT ?= runs/demo
DEMO_STEPS ?= 800
BIN := $(VENV)/bin

# the tests whose paths differ in bf16: trainer, resume, cards, the conformance kit
PRECISION_TESTS ?= tests/test_trainer.py tests/test_reliability.py tests/test_interrupts.py tests/test_resume_checks.py \
	tests/test_hub.py tests/test_conformance.py tests/test_precision.py

.PHONY: install demo test test-precision test-bf16 test-all lint docs benchmark clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	@touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	@if [ ! -f "$(DATA)" ]; then \
	  echo "The demo trains on 64x64 neutrophils of the PBC blood-cell dataset, but $(DATA) is missing."; \
	  echo "Dataset: Acevedo et al., 'A dataset of microscopic peripheral blood cell images for development"; \
	  echo "of automatic recognition systems', Data in Brief 30 (2020) 105474, doi:10.1016/j.dib.2020.105474,"; \
	  echo "Mendeley Data doi:10.17632/snkd93bnjr.1 (CC BY 4.0). Put pbc_neutrophil_64.npz at $(DATA),"; \
	  echo "or run: make demo DATA=/path/to/your.npz"; exit 1; fi
	rm -rf $(DEMO_OUT)
	$(BIN)/gan-augment train --backend dcgan --data $(DATA) --split train --image-size 64 \
	  --steps $(DEMO_STEPS) --out $(DEMO_OUT) --opt width=32 --sample-every 100 --checkpoint-every 100

test: $(BIN)/.installed
	$(BIN)/pytest

# precision="auto" chooses FORCE (bf16 or fp32) as if this CPU did: bf16 runs emulated, and slower,
# on a CPU without native bf16. CI runs the precision the machine would not choose itself.
FORCE ?= bf16
test-precision: $(BIN)/.installed
	GAN_AUGMENT_TEST_PRECISION=$(FORCE) $(BIN)/pytest $(PRECISION_TESTS)

test-bf16:
	$(MAKE) test-precision FORCE=bf16

test-all: $(BIN)/.installed
	$(BIN)/pytest -m "slow or not slow"

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports

docs: $(BIN)/.installed
	$(BIN)/mkdocs build --strict

benchmark: $(BIN)/.installed
	$(BIN)/python benchmarks/train_throughput.py

clean:
	rm -rf $(VENV) site runs/demo
