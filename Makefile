# The two commands: `make run` and `make test`. See README.md.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/arena
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/15
PYTEST_ARGS ?=

.PHONY: run test check install fmt messages clean

$(VENV)/.installed: pyproject.toml scripts/install.sh
	PYTHON=$(PYTHON) VENV=$(VENV) scripts/install.sh

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(PY) -m arena.devserver

test: $(VENV)/.installed
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
	  DEBUG=true ARENA_SECURE_COOKIES=false HF_HUB_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

check: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=true $(VENV)/bin/mypy arena models_backend
	$(VENV)/bin/lint-imports

fmt: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

messages: $(VENV)/.installed  ## needs GNU gettext; the compiled .mo files are committed
	DEBUG=true $(PY) manage.py makemessages -l ko --ignore .venv --ignore var --no-obsolete
	DEBUG=true $(PY) manage.py makemessages -d djangojs -l ko --ignore .venv --ignore var --no-obsolete
	DEBUG=true $(PY) manage.py compilemessages --ignore .venv

clean:
	rm -rf $(VENV) var/tmp var/cache
