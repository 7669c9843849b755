#!/usr/bin/env bash
# Idempotent set-up for a fresh clone: Python venv + deps, npm deps + browser
# bundle, (with --browser) Debian's chromium for the browser tests, (with
# --postgres) the local PostgreSQL service the store's contract tests use, and
# (with --deploy) the tools the tests of deploy/ run: HAProxy, redis-server,
# systemd-analyze, openssl, promtool.
# Everything comes from PyPI, npm and Debian; nothing from a CDN.
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
want_postgres=0
want_deploy=0
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=1 ;;
    --postgres) want_postgres=1 ;;
    --deploy) want_deploy=1 ;;
    *) echo "usage: scripts/setup.sh [--browser] [--postgres] [--deploy]" >&2; exit 2 ;;
  esac
done

# Installers are chatty (pip's build warnings, npm's summaries): their output
# goes to a log under .venv/ and is shown only when a step fails, so `make run`
# prints one line per step and then the server's own start-up line.
quietly() {
  local log=".venv/setup-$1.log"; shift
  if ! "$@" >"$log" 2>&1; then
    echo "setup: failed: $* (the last lines follow; all of it is in $log)" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
}

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$py" -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python dependencies (about a minute the first time)"
  quietly pip .venv/bin/pip install --quiet --upgrade pip
  quietly pip-project .venv/bin/pip install --quiet -e '.[dev]'
  touch "$stamp"
fi

if [ -f web_client/package.json ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "setup: npm is required (apt-get install nodejs npm)" >&2; exit 1
  fi
  nstamp=web_client/node_modules/.installed
  if [ ! -f "$nstamp" ] || [ web_client/package-lock.json -nt "$nstamp" ]; then
    echo "setup: installing npm dependencies"
    quietly npm npm --prefix web_client ci --no-audit --no-fund --loglevel=error
    touch "$nstamp"
  fi
  echo "setup: building the browser bundle"
  quietly build npm --prefix web_client run --silent build
fi

# The load generator (loadtests/, Node over raw WebSockets); the CI smoke uses it.
if [ -f loadtests/package.json ]; then
  lstamp=loadtests/node_modules/.installed
  if [ ! -f "$lstamp" ] || [ loadtests/package-lock.json -nt "$lstamp" ]; then
    echo "setup: installing the load generator's npm dependencies"
    quietly npm-loadtests npm --prefix loadtests ci --no-audit --no-fund --loglevel=error
    touch "$lstamp"
  fi
fi

if [ "$want_browser" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing Debian's chromium for the browser tests"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-noto-core >/dev/null
fi

# The PostgreSQL backend's tests use the local service (127.0.0.1:5432) and
# initdb. Started here if it is installed and down; if it is not installed
# the tests say so (and fail under CI=true). The server itself never needs it.
if [ "$want_postgres" = 1 ] && command -v pg_lsclusters >/dev/null 2>&1; then
  if pg_lsclusters --no-header 2>/dev/null | awk '$1 == "15" && $2 == "main" && $4 != "online" {f=1} END {exit !f}'; then
    echo "setup: starting the local PostgreSQL 15 service"
    pg_ctlcluster --skip-systemctl-redirect 15 main start
  fi
fi

# tests/deploy/ starts the shipped configurations for real: HAProxy in front
# of two nodes, redis-server with the ACL file (the cluster tests,
# tests/integration/test_cluster_*.py, start private redis-servers too),
# systemd-analyze on the units,
# promtool on the alert rules (Debian's prometheus package, which has it).
# The Debian package of each tool that is missing; the tests start their own
# processes on ports of their own and need no service of these packages.
if [ "$want_deploy" = 1 ]; then
  missing=""
  for pair in haproxy:haproxy redis-server:redis-server systemd-analyze:systemd openssl:openssl \
              promtool:prometheus; do
    tool=${pair%%:*}
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
      missing="$missing ${pair#*:}"
    fi
  done
  if [ -n "$missing" ]; then
    echo "setup: installing Debian's$missing for the tests of deploy/"
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    # shellcheck disable=SC2086  # one word per package
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
  fi
fi
