# One entry point for chores. Every target creates .venv if it is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install models run test fuzz lint bench clean screenshots

# constraints.txt pins every package to the versions the suite last passed with (see its header).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,scale]'
	touch $(STAMP)

install: $(STAMP) models

# BlazeFace (face_detection_full_range_sparse.tflite, Apache-2.0) from the mediapipe wheel on the package
# index: downloaded once (not installed), extracted, SHA-256 checked (detectors/blazeface.py).
BLAZEFACE := models/blazeface/face_detection_full_range_sparse.tflite

$(BLAZEFACE): | $(STAMP)
	$(PY) -m detectors.blazeface fetch --dest $@

models: $(BLAZEFACE)

run: $(STAMP) models
	$(PY) -m governance init
	$(PY) -m governance serve

# The whole suite: tests/ and the libraries' docstring examples. It needs ../shared/testdata beside the checkout,
# PostgreSQL at 127.0.0.1:5432 (trust, db test), Redis at 127.0.0.1:6379 and RabbitMQ at 127.0.0.1:5672 (README,
# "Testing"); a test that needs a missing one errors with a one-line reason naming it.
test: $(STAMP) models
	$(PY) -m pytest -q

# The pages at phone (390x844) and desktop (1280x800) widths, into docs/pages/ (the browser tests, photographing
# each page they reach; needs Debian's chromium).
screenshots: $(STAMP)
	CONSENTGATE_SCREENSHOTS=1 $(PY) -m pytest -q tests/browser

# The API against its own OpenAPI document (/openapi.json) with schemathesis: every check, every phase, 300 examples
# per operation and phase instead of make test's 30 (docs/api.md says what each costs). CG_FUZZ_PATHS=REGEX narrows
# it to some paths.
fuzz: $(STAMP) models
	CG_FUZZ_EXAMPLES=$${CG_FUZZ_EXAMPLES:-300} $(PY) -m pytest -q -s tests/functional/test_openapi_contract.py

# mypy --strict on the libraries that promise it (tests/test_typing.py enforces it too); the rest with the
# project's default settings ([tool.mypy] in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy --strict policies provenance media
	$(VENV)/bin/mypy policies provenance detectors generator media governance

bench: $(STAMP) models
	$(PY) -m bench

clean:
	rm -rf $(VENV) var .pytest_cache
