# The README's two commands: `make demo` and `make test`. Each sets up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.jwtmint-installed
# `make demo` installs only what the demo runs (the demo extra), not the test toolchain
DEMO_STAMP := $(VENV)/.jwtmint-demo-installed
# the peers of `jwtmint bench` (the bench extra): only `make bench` needs them
BENCH_STAMP := $(VENV)/.jwtmint-bench-installed

.PHONY: demo test lint typecheck unit bench soak annotate instructions clean

$(STAMP): pyproject.toml setup.py constraints.txt src/jwtmint/_speedups.pyx src/jwtmint/_openssl.h
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	$(BIN)/python -c "import jwtmint, jwtmint._kernels as k; print('jwtmint', jwtmint.__version__, 'implementation:', jwtmint.IMPLEMENTATION, 'HMAC:', getattr(k.kernel, 'HMAC_BACKEND', 'hashlib'))"
	touch $(STAMP) $(DEMO_STAMP)  # the test extra holds the demo's

DEMO_ARGS ?=

# a line before each step, and pip's own progress: a fresh clone shows at once what it waits for
$(DEMO_STAMP): pyproject.toml setup.py constraints.txt src/jwtmint/_speedups.pyx src/jwtmint/_openssl.h
	@echo "make demo: setting up $(VENV) with jwtmint (its C extension built here, with Cython and setuptools"
	@echo "           from pyproject's build-system), PyJWT (the comparison), uvloop and PyNaCl; not the test tools"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e '.[demo]'
	$(BIN)/python -c "import jwtmint; print('jwtmint', jwtmint.__version__, 'implementation:', jwtmint.IMPLEMENTATION)"
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python -m jwtmint demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools

typecheck: $(STAMP)
	$(BIN)/mypy

# the integration tests' authorization server (panva's oidc-provider): installed when npm
# is on PATH; without it those tests skip (CI sets JWTMINT_REQUIRE_OIDC_PROVIDER=1: they fail)
OIDC_DIR := tests/integration/oidc-provider
OIDC_STAMP := $(OIDC_DIR)/node_modules/.package-lock.json

$(OIDC_STAMP): $(OIDC_DIR)/package-lock.json
	npm ci --prefix $(OIDC_DIR) --no-audit --no-fund
	touch $(OIDC_STAMP)

# JWTMINT_REQUIRE_EXTENSIONS makes the guard test fail if the C module did not load.
unit: $(STAMP) $(if $(shell command -v npm),$(OIDC_STAMP))
	JWTMINT_REQUIRE_EXTENSIONS=1 $(BIN)/python -m pytest

test: lint typecheck unit

# the load test of the suite, bigger: 1,000 clients, 20,000 calls a round, 5 rounds
soak: $(STAMP)
	JWTMINT_SOAK=1 $(BIN)/python -m pytest tests/test_load.py -p no:cacheprovider -q -s

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test,bench]'
	touch $(BENCH_STAMP)

BENCH_ARGS ?=

# the pytest-benchmark suites (our regressions), then every peer vs the floor in one run, then
# the token manager vs authlib, then RedisTokenCache (starts its own redis-server; fails without),
# then PyJWT's jwt.encode under patch_pyjwt() vs unpatched, then a DPoP proof per request,
# then an aiohttp gateway forwarding requests with tokens, under load (bench gateway), then
# mint_many against one process per core and the scaling model (bench batch)
bench: $(BENCH_STAMP)
	JWTMINT_REQUIRE_EXTENSIONS=1 $(BIN)/python -m pytest benchmarks --benchmark-only --benchmark-columns=median,iqr,ops --benchmark-sort=name -p no:cacheprovider
	JWTMINT_REQUIRE_EXTENSIONS=1 $(BIN)/python -m jwtmint bench $(BENCH_ARGS)
	JWTMINT_REQUIRE_EXTENSIONS=1 $(BIN)/python -m jwtmint bench tokens
	JWTMINT_REQUIRE_EXTENSIONS=1 $(BIN)/python -m jwtmint bench redis
	JWTMINT_REQUIRE_EXTENSIONS=1 $(BIN)/python -m jwtmint bench pyjwt
	JWTMINT_REQUIRE_EXTENSIONS=1 $(BIN)/python -m jwtmint bench dpop
	JWTMINT_REQUIRE_EXTENSIONS=1 $(BIN)/python -m jwtmint bench gateway
	JWTMINT_REQUIRE_EXTENSIONS=1 $(BIN)/python -m jwtmint bench batch

annotate: $(STAMP)
	mkdir -p build/annotate
	$(BIN)/cython -3 -a src/jwtmint/_speedups.pyx -o build/annotate/_speedups.c
	@echo "wrote build/annotate/_speedups.html: yellow lines are Python interaction"

# instructions per mint under callgrind (needs valgrind): repeatable where wall time is not
instructions: $(BENCH_STAMP)
	$(BIN)/python tools/callgrind_mint.py $(INSTRUCTIONS_ARGS)

clean:
	rm -rf $(VENV) build src/*.egg-info src/jwtmint/_speedups.c src/jwtmint/*.so $(OIDC_DIR)/node_modules
