# The two commands in the README: `make run` and `make test`.
.PHONY: setup run test lint loadtest loadtest-quick loadtest-smoke loadtest-multinode loadtest-hostile loadtest-slowphone clean

setup:
	@scripts/setup.sh

run: setup
	.venv/bin/chatserver serve

# The suite runs in four workers, one test module each at a time (module-scoped
# servers and browsers stay per module): most of it waits on real sockets,
# processes and Chromium, so four workers keep two cores busy.
test:
	@scripts/setup.sh --browser --postgres --deploy
	.venv/bin/ruff check chatserver tests loadtests
	.venv/bin/mypy
	.venv/bin/pytest -q -p no:cacheprovider -n 4 --dist loadfile

lint: setup
	.venv/bin/ruff check chatserver tests loadtests
	.venv/bin/mypy

loadtest: setup
	.venv/bin/python -m loadtests run --profile full

loadtest-quick: setup
	.venv/bin/python -m loadtests run --profile quick

loadtest-smoke: setup
	.venv/bin/python -m loadtests run --profile smoke

# The same load on 1 node embedded, 1 and 2 nodes on a private Redis, the peak
# over 2 nodes and kill -9 of one node, in one run of ~10 min (needs
# redis-server; docs/performance.md, "Several nodes on Redis").
loadtest-multinode: setup
	.venv/bin/python -m loadtests run --profile multinode

# One hostile client beside a real conversation (docs/hostile-client.md).
loadtest-hostile: setup
	.venv/bin/python -m loadtests.hostile

# The youth page on an emulated cheap phone over slow 3G (docs/performance.md).
loadtest-slowphone:
	@scripts/setup.sh --browser
	.venv/bin/python -m loadtests.slowphone

clean:
	rm -rf .venv web_client/node_modules web_client/dist .pytest_cache .mypy_cache .ruff_cache
