#!/usr/bin/env bash
# The README's test command: installs what the tests need (only what is missing), then runs the
# format check, clippy with warnings as errors, the whole test suite and the end-to-end scripts.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/packages.sh
# The tests also drive the peers' own tools (see TEST_PACKAGES).
ensure_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"

# From a fresh checkout, RocksDB's C++ would be compiled twice (clippy's check build and the test
# build each run its build script); sccache serves the second from the first, about 10 minutes
# saved. A warm target directory goes on without it: switching the wrapper rebuilds everything.
if [ ! -d target/debug ] && [ -z "${RUSTC_WRAPPER:-}" ]; then
  ensure_packages sccache
  if sccache --start-server >/dev/null 2>&1 || sccache --show-stats >/dev/null 2>&1; then
    export RUSTC_WRAPPER=sccache
  fi
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

echo "==> cargo fmt --check"
cargo fmt --all --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

# nextest does not run doctests.
echo "==> doctests"
cargo test --workspace --doc --locked --quiet

for script in tests/e2e/*.sh; do
  [ -e "$script" ] || continue
  echo "==> end-to-end: $script"
  bash "$script"
done

# Last, so that its summary closes the output.
echo "==> tests"
cargo nextest run --workspace --locked --no-fail-fast
