.PHONY: up test test-fast lint migrate worker schema

up:  ## set up and run the service on the embedded defaults
	bash scripts/up.sh

test:  ## run the whole test suite
	bash scripts/test.sh

test-fast:  ## the suite without the tests marked slow (worker processes, servers, browsers)
	bash scripts/test.sh --fast

lint:  ## ruff, mypy and import-linter
	bash scripts/lint.sh

migrate:
	.venv/bin/python manage.py migrate

worker:
	.venv/bin/celery -A config worker --loglevel=INFO --queues=default

schema:  ## write the OpenAPI schema to docs/openapi.yaml
	.venv/bin/python manage.py spectacular --file docs/openapi.yaml
