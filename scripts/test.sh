#!/usr/bin/env bash
# The README's test command: installs what the tests need (only what is missing), then runs the
# format check, clippy with warnings as errors, the whole test suite and the end-to-end scripts.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the build and the tests need. Add to this list, never install by hand.
SYSTEM_PACKAGES=(
  clang libclang-dev                   # RocksDB's build (bindgen)
  protobuf-compiler libprotobuf-dev    # etcd-client's generated gRPC code
  etcd-client curl                     # etcdctl and curl, for the end-to-end scripts
)

missing=()
for package in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "==> installing system packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
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
