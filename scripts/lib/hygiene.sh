#!/usr/bin/env bash
# Dependency hygiene: which of our crates may depend on which, no unused dependencies, and
# cargo-deny's licenses/bans/sources policy (deny.toml). scripts/test runs it before the
# tests and fails on it; scripts/check runs it alone. Source after bootstrap.sh (ROOT, log)
# once ensure_hygiene_tools has installed cargo-machete and cargo-deny; then call `hygiene`.
# Each part prints one line when it passes, and what is wrong and one FAILED line when not.

# What a crate must not depend on, directly or through anything else, counting normal
# dependencies only (a test may still use them through [dev-dependencies]), with the
# features cargo resolves when the crate is built alone (`cargo build -p CRATE`).
# One rule per line: "crate: forbidden forbidden ...".
HYGIENE_FORBIDDEN=(
  "intake-admin: intake-worker"
  "intakectl: intake-worker intake-store sqlx"
  "intake-api: sqlx intake-worker intake-admin"
  "intake-worker: intake-admin intake-api"
)

# The platform deny.toml's [graph] names: crates for it are fetched before the offline check.
HYGIENE_TARGET=x86_64-unknown-linux-gnu

hygiene_say() { printf 'hygiene: %s\n' "$*"; }

# (a) The forbidden edges above, from `cargo tree -e normal -p CRATE`.
hygiene_architecture() {
  local failed=0 checked=() rule from forbidden to deps names chain
  for rule in "${HYGIENE_FORBIDDEN[@]}"; do
    from="${rule%%:*}"
    forbidden="${rule#*:}"
    if ! deps="$(cd "$ROOT" && cargo tree --quiet -e normal -p "$from" --prefix none --format '{p}' 2>&1)"; then
      printf '%s\n' "$deps" >&2
      hygiene_say "architecture: cannot list what $from depends on (is it still a workspace member?)"
      failed=1
      continue
    fi
    checked+=("$from")
    names="$(awk '{ print $1 }' <<<"$deps")"
    for to in $forbidden; do
      # (A here-string, not a pipe: `grep -q` stopping early would fail the pipe.)
      if grep -qxF -- "$to" <<<"$names"; then
        # One way it gets there: walk the inverted tree (to ← ... ← from) to the first
        # line naming `from`, and print that path from `from` down.
        chain="$(cd "$ROOT" && cargo tree --quiet -e normal -p "$from" -i "$to" --prefix depth --format '{p}' 2>/dev/null |
          awk -v from="$from" '
            { match($0, /^[0-9]+/); d = substr($0, 1, RLENGTH) + 0; split(substr($0, RLENGTH + 1), f, " ")
              path[d] = f[1]
              if (f[1] == from) { s = path[d]; for (i = d - 1; i >= 0; i--) s = s " -> " path[i]; print s; exit } }' || true)"
        hygiene_say "architecture: $from must not depend on $to, but does: ${chain:-$from -> ... -> $to}"
        failed=1
      fi
    done
  done
  if [ "$failed" -ne 0 ]; then
    hygiene_say "architecture FAILED (rules: HYGIENE_FORBIDDEN in scripts/lib/hygiene.sh)"
    return 1
  fi
  hygiene_say "architecture ok: no forbidden dependency in ${checked[*]}"
}

# (b) cargo machete over every workspace member (and fuzz/, outside the workspace), not over
# vendor/: the patched lettre is upstream's manifest. A false positive (a crate only a macro
# or a feature needs) goes in that crate's [package.metadata.cargo-machete] ignored, with why.
# cargo machete reads [dependencies] only, not [dev-dependencies].
hygiene_machete() {
  local dirs=() out rc
  mapfile -t dirs < <(cd "$ROOT" && cargo metadata --no-deps --format-version 1 |
    grep -o '"manifest_path":"[^"]*"' | sed 's/^"manifest_path":"//; s/"$//; s#/Cargo.toml$##' | sort -u)
  if [ "${#dirs[@]}" -eq 0 ]; then
    hygiene_say "unused dependencies: cargo metadata listed no workspace members"
    hygiene_say "unused dependencies FAILED"
    return 1
  fi
  [ -f "$ROOT/fuzz/Cargo.toml" ] && dirs+=("$ROOT/fuzz")
  rc=0
  out="$(cd "$ROOT" && cargo machete --skip-target-dir "${dirs[@]}" 2>&1)" || rc=$?
  if [ "$rc" -ne 0 ]; then
    if [ "$rc" -eq 1 ]; then
      # "crate -- path/Cargo.toml:" and, indented under it, each unused dependency.
      printf '%s\n' "$out" | grep -E '^[^[:space:]].* -- .*Cargo\.toml:$|^[[:space:]]+[^[:space:]]'
    else
      printf '%s\n' "$out"
    fi
    hygiene_say "unused dependencies FAILED (cargo machete; remove them, or see scripts/lib/hygiene.sh for false positives)"
    return 1
  fi
  hygiene_say "unused dependencies ok: cargo machete found none in ${#dirs[@]} crates"
}

# (c) cargo deny, offline: no advisory database can be fetched here, and cargo-deny itself
# downloads nothing; `cargo fetch` first brings the crates the graph needs (a no-op when a
# build already has; crates.io is reachable, the advisory database's git host is not).
hygiene_deny() {
  local out rc dupes
  if ! out="$(cd "$ROOT" && cargo fetch --quiet --target "$HYGIENE_TARGET" 2>&1)"; then
    printf '%s\n' "$out"
    hygiene_say "cargo deny FAILED: cannot fetch the crates of the graph"
    return 1
  fi
  rc=0
  out="$(cd "$ROOT" && cargo deny --offline --color never --manifest-path "$ROOT/Cargo.toml" \
    --config "$ROOT/deny.toml" check --hide-inclusion-graph licenses bans sources 2>&1)" || rc=$?
  dupes="$(printf '%s\n' "$out" | sed -n "s/^warning\[duplicate\]: found [0-9]* duplicate entries for crate '\([^']*\)'.*/\1/p" | tr '\n' ' ' | sed 's/ $//')"
  if [ "$rc" -ne 0 ]; then
    # Everything but the several-versions warnings (listed on one line below).
    printf '%s\n' "$out" | awk 'BEGIN { RS = ""; ORS = "\n\n" } !/^warning\[duplicate\]/'
    hygiene_say "cargo deny FAILED (deny.toml; crates in several versions, a warning only: ${dupes:-none})"
    return 1
  fi
  hygiene_say "cargo deny ok: licenses, bans, sources (crates in several versions, a warning only: ${dupes:-none})"
}

# All three; fails when any fails, after running them all.
hygiene() {
  local failed=0
  hygiene_architecture || failed=1
  hygiene_machete || failed=1
  hygiene_deny || failed=1
  return "$failed"
}
