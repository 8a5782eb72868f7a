#!/usr/bin/env bash
# Shared set-up for scripts/run and scripts/test: installs what is missing on a Debian
# machine (Redis, PostgreSQL, a C toolchain), checks that Rust is new enough (and says what
# to install when it is not), starts Redis and PostgreSQL if they are not answering, and
# creates the database. Safe to run again and again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export ROOT

log() { printf '\033[1;34m[intake]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[intake]\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"; fi
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* by hand"
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_packages() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
  command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
  command -v pg_isready >/dev/null 2>&1 || missing+=(postgresql-client)
  command -v cc >/dev/null 2>&1 || missing+=(build-essential)
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  command -v curl >/dev/null 2>&1 || missing+=(curl ca-certificates)
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# The oldest Rust the workspace builds with: `rust-version` in Cargo.toml's [workspace.package].
workspace_rust_version() {
  sed -n '/^\[workspace\.package\]/,/^\[/ s/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$ROOT/Cargo.toml" | head -n 1
}

# version_at_least HAVE NEED: whether dotted version HAVE is NEED or newer (1.95.0 >= 1.88).
version_at_least() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]
}

# Checks that cargo is at least the workspace's rust-version. Installs nothing: rustup's
# installer and toolchains come from static.rust-lang.org, which a machine without general
# internet access cannot reach, so when cargo is missing or too old this says exactly what
# to install (rust_install_advice) and stops.
ensure_rust() {
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  local need have cargo_path
  need="$(workspace_rust_version)"
  [ -n "$need" ] || die "no rust-version in [workspace.package] of $ROOT/Cargo.toml"
  if ! cargo_path="$(command -v cargo)"; then
    rust_install_advice "$need" "cargo not found on PATH ($PATH)"
  fi
  # "cargo 1.95.0 (f2d3ce0bd 2026-03-21)"; a nightly says "1.97.0-nightly".
  have="$(cargo --version 2>/dev/null | awk '{ print $2 }' || true)"
  have="${have%%-*}"
  if [ -z "$have" ]; then
    rust_install_advice "$need" "$cargo_path does not run (\`cargo --version\` failed: a rustup without a default toolchain?)"
  fi
  version_at_least "$have" "$need" ||
    rust_install_advice "$need" "$cargo_path is cargo $have, older than the workspace's rust-version $need"
}

# rust_install_advice NEED WHY: says why Rust will not do and what exactly to install, from
# what this machine can see (rustup, Debian's packages and their versions), then stops.
rust_install_advice() {
  local need="$1" why="$2" rustc_version line pkg from
  log "$why"
  log "Intake needs Rust $need or newer (rust-version in Cargo.toml). Install it, then run this again:"
  if command -v rustup >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/rustup" ]; then
    log "  rustup is installed: rustup toolchain install stable --profile minimal && rustup default stable"
    log "    (or exactly this version: rustup toolchain install $need --profile minimal && rustup default $need;"
    log "    rustup downloads from static.rust-lang.org, which this machine must reach)"
  fi
  # Debian's packages need only a Debian mirror. The compiler's version decides: `cargo` goes
  # with `rustc`, and `cargo-web` with `rustc-web` (Debian 12's newer Rust, for browsers).
  local found=0
  for line in "rustc cargo" "rustc-web cargo-web"; do
    read -r from pkg <<<"$line"
    rustc_version="$(apt-cache policy "$from" 2>/dev/null | awk '/Candidate:/ { print $2 }')"
    [ -n "$rustc_version" ] && [ "$rustc_version" != "(none)" ] || continue
    found=1
    # 1.96.0+dfsg1-1~deb12u2 -> 1.96.0 (and no epoch).
    rustc_version="${rustc_version#*:}"
    rustc_version="${rustc_version%%[+~-]*}"
    if version_at_least "$rustc_version" "$need"; then
      log "  Debian: apt-get install $pkg    (Rust $rustc_version, new enough; installs /usr/bin/cargo,"
      log "    which a cargo in ~/.cargo/bin would shadow: take ~/.cargo/bin off PATH for it)"
    else
      log "  not Debian's $pkg here: it is Rust $rustc_version, older than $need"
    fi
  done
  if [ "$found" -eq 0 ]; then
    log "  (apt-cache knows no rustc package: run apt-get update, then apt-cache policy rustc rustc-web)"
  fi
  log "  no internet and no new enough package: install Rust $need+ with rustup on a machine that can,"
  log "    and copy its ~/.rustup and ~/.cargo here (or use a standalone installer, https://forge.rust-lang.org/infra/other-installation-methods.html)"
  die "Rust $need or newer is required"
}

REDIS_HOST=127.0.0.1
REDIS_PORT=6379
ensure_redis() {
  if redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping >/dev/null 2>&1; then return; fi
  log "starting Redis on $REDIS_HOST:$REDIS_PORT"
  local dir=/var/lib/redis logdir=/var/log/redis
  as_root mkdir -p "$dir" "$logdir"
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
    --save "" --appendonly no --dir "$dir" --logfile "$logdir/intake.log"
  for _ in $(seq 1 50); do
    redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping >/dev/null 2>&1 && return
    sleep 0.1
  done
  die "Redis did not start; see $logdir/intake.log"
}

ensure_postgres() {
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    log "starting PostgreSQL"
    local version
    version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$version" ] || die "no PostgreSQL cluster found under /etc/postgresql"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 100); do
      pg_isready -q -h 127.0.0.1 -p 5432 && break
      sleep 0.1
    done
    pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL did not start"
  fi
  # The database the worker and support tools use (docs/contract.md §6 default).
  if ! psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = 'intake'" | grep -q 1; then
    log "creating database intake"
    psql_admin -c "CREATE DATABASE intake" >/dev/null
  fi
}

# Talks to PostgreSQL as its superuser: over TCP where the machine trusts it (CI), over the
# local socket as the postgres system user otherwise (a fresh Debian install).
psql_admin() {
  if psql -h 127.0.0.1 -U postgres -d postgres -w -c 'SELECT 1' >/dev/null 2>&1; then
    psql -h 127.0.0.1 -U postgres -d postgres -w "$@"
  else
    as_root runuser -u postgres -- psql -d postgres "$@"
  fi
}

# What only the tests need: headless Chromium and its WebDriver for the page tests,
# docker-compose to validate compose.yaml, schemathesis for the OpenAPI contract test, moto (an S3-compatible server from PyPI, in a virtualenv of its own) for S3 staging, and
# standardwebhooks (the specification's reference verifier) for webhook signatures.
# Debian's prometheus, which admin/tests/metrics.rs runs (its own process, on a free port) to
# scrape the api, a worker and the admin.
ensure_test_tools() {
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  [ -x /usr/bin/prometheus ] || missing+=(prometheus)
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
  # The package may start its service on :9090 (the worker's default address); the test
  # needs only the binary.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v service >/dev/null 2>&1; then
    as_root service prometheus stop >/dev/null 2>&1 || true
  fi
  local venv="${INTAKE_MOTO_VENV:-$HOME/.cache/intake/moto-venv}"
  if [ ! -x "$venv/bin/moto_server" ]; then
    log "installing moto (S3-compatible test server) into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'moto[server]'
  fi
  export INTAKE_TEST_MOTO_SERVER="$venv/bin/moto_server"
  local st_venv="${INTAKE_SCHEMATHESIS_VENV:-$HOME/.cache/intake/schemathesis-venv}"
  # Pinned: the contract test's hooks (api/tests/contract.rs) rely on this version's generator.
  local st_version=4.32.5
  if ! "$st_venv/bin/schemathesis" --version 2>/dev/null | grep -q "$st_version"; then
    log "installing schemathesis $st_version (OpenAPI contract tests) into $st_venv"
    python3 -m venv "$st_venv"
    "$st_venv/bin/pip" install --quiet "schemathesis==$st_version"
  fi
  export INTAKE_TEST_SCHEMATHESIS="$st_venv/bin/schemathesis"
  # The Standard Webhooks reference implementation, which checks our signatures from outside.
  local sw_venv="${INTAKE_STANDARDWEBHOOKS_VENV:-$HOME/.cache/intake/standardwebhooks-venv}"
  local sw_version=1.1.0
  if ! "$sw_venv/bin/python" -c "import importlib.metadata as m; assert m.version('standardwebhooks') == '$sw_version'" >/dev/null 2>&1; then
    log "installing standardwebhooks $sw_version (the reference webhook verifier) into $sw_venv"
    python3 -m venv "$sw_venv"
    "$sw_venv/bin/pip" install --quiet "standardwebhooks==$sw_version"
  fi
  export INTAKE_TEST_STANDARDWEBHOOKS_PYTHON="$sw_venv/bin/python"
}

# cargo-machete and cargo-deny, for the dependency checks (scripts/lib/hygiene.sh), built
# from crates.io at the versions deny.toml was written for (nothing but the registries is
# reachable here, so no prebuilt binaries). Installed only when missing or at another version.
HYGIENE_MACHETE_VERSION=0.9.2
HYGIENE_DENY_VERSION=0.20.2
ensure_hygiene_tools() {
  command -v cc >/dev/null 2>&1 || apt_install build-essential
  ensure_cargo_tool machete cargo-machete "$HYGIENE_MACHETE_VERSION"
  ensure_cargo_tool deny cargo-deny "$HYGIENE_DENY_VERSION"
}

# ensure_cargo_tool SUBCOMMAND CRATE VERSION: `cargo install --locked CRATE@VERSION` unless
# `cargo SUBCOMMAND --version` already names VERSION. The crates' own release profiles (fat
# LTO and one code-generation unit for cargo-deny) are overridden: on two cores they double
# the install time (about 7 minutes for cargo-deny) for a tool that runs for seconds.
ensure_cargo_tool() {
  local subcommand="$1" crate="$2" version="$3" have
  have="$(cargo "$subcommand" --version 2>/dev/null || true)"
  case " $have " in *" $version "*) return ;; esac
  log "installing $crate $version (cargo install; a few minutes on two cores)"
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install --locked --quiet "$crate@$version"
  have="$(cargo "$subcommand" --version 2>/dev/null || true)"
  case " $have " in *" $version "*) ;; *) die "$crate $version did not install (cargo $subcommand --version: ${have:-nothing})" ;; esac
}

bootstrap() {
  ensure_packages
  ensure_rust
  ensure_redis
  ensure_postgres
}
