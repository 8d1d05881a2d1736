#!/usr/bin/env bash
# deps.sh: make sure the Debian packages the build needs are installed.
# As root it installs what is missing with apt-get (non-interactive);
# otherwise it prints the exact command to run and fails.
# Sourced by demo.sh and test.sh; callable on its own. `dm_install_deps test`
# (test.sh) also installs DM_TEST_PACKAGES, what only the checks need.
set -euo pipefail

DM_PACKAGES=(
  build-essential cmake pkg-config
  libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libsodium-dev
  liblmdb-dev libyaml-dev libcjson-dev libcriterion-dev libsqlite3-dev
  clang libclang-rt-dev
)
# test.sh only: docker-compose checks docker-compose.yml (`docker-compose
# config`; no Docker engine needed); python3-jsonschema checks meshd
# --openlineage events against the OpenLineage schema (test_openlineage).
DM_TEST_PACKAGES=(docker-compose python3-jsonschema)

dm_missing_packages() {
  local p missing=() wanted=("${DM_PACKAGES[@]}")
  [ "${1:-}" = test ] && wanted+=("${DM_TEST_PACKAGES[@]}")
  for p in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  echo "${missing[@]}"
}

dm_install_deps() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps: this is not a Debian system; install: ${DM_PACKAGES[*]}${1:+ ${DM_TEST_PACKAGES[*]}}" >&2
    return 1
  fi
  local missing
  missing=$(dm_missing_packages "${1:-}")
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" = 0 ]; then
    echo "deps: installing $missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "deps: missing Debian packages. Run, then try again:" >&2
    echo "  sudo apt-get install -y $missing" >&2
    return 1
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  dm_install_deps "${1:-}"
fi
