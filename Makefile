# Every target installs what it needs: a fresh clone with Python 3.11+, a JDK and Maven
# is enough for `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv browsers clients kafka kafka-stop run worker producer test unit lint docs bench chaos clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## Start this checkout's Kafka broker in the background (its own port and state folder,
## derived from the checkout's path); the last line is KAFKA_BOOTSTRAP_SERVERS=...
kafka: venv
	@$(BIN)/python -m tests.support.kafka_local start

## Stop this checkout's background broker; this deletes its topics and data.
kafka-stop: venv
	@$(BIN)/python -m tests.support.kafka_local stop

## Broker + worker + demo orders; prints the URLs; Ctrl-C stops everything.
run: venv
	@$(BIN)/python -m tests.support.devrun

## Debian's Chromium for the dashboard's browser tests (Playwright cannot download one here).
browsers:
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y chromium; \
		else sudo apt-get update && sudo apt-get install -y chromium; fi; }

## kcat (librdkafka) for the interop tests with producers in other languages; the Java
## client is compiled from tests/support/interop with the JDK.
clients:
	@command -v kcat >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y kcat; \
		else sudo apt-get update && sudo apt-get install -y kcat; fi; }

## The whole suite: lint, unit tests, integration and browser tests against a real broker.
test: venv browsers clients
	@$(BIN)/python -m tests.support.kafka_local resolve >/dev/null
	$(BIN)/ruff check streams agents tables tests bench worker.py
	$(BIN)/mypy
	$(BIN)/mkdocs build --strict --quiet
	$(BIN)/pytest -p no:cacheprovider -n 2 --dist loadfile

unit: venv
	$(BIN)/pytest -p no:cacheprovider tests/unit

lint: venv
	$(BIN)/ruff check streams agents tables tests bench worker.py
	$(BIN)/mypy

## The documentation (docs/, MkDocs) into build/docs; warnings are errors.
docs: venv
	$(BIN)/mkdocs build --strict

## Quix Streams and py-spy for the benchmarks, in a virtualenv of their own: Quix brings
## orjson, which would change how Faust encodes JSON in our worker's .venv.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp

$(BENCH_STAMP): bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -r bench/requirements.txt
	touch $(BENCH_STAMP)

## Every benchmark (over half an hour on 2 cores); prints the figures and the time each took
## and writes them to test-output/bench.json.
bench: venv $(BENCH_STAMP)
	@$(BIN)/python -m tests.support.kafka_local resolve >/dev/null
	BENCH_QUIX_PYTHON=$(BENCH_VENV)/bin/python $(BIN)/python -m bench

## Long fault runs (kill -9 cycles, broker loss); prints and writes test-output/chaos-report.json.
chaos: venv
	@$(BIN)/python -m tests.support.kafka_local resolve >/dev/null
	$(BIN)/pytest -p no:cacheprovider -m chaos -s tests/integration

clean:
	rm -rf $(VENV) $(BENCH_VENV) var test-output
