# Sourced by the end-to-end scripts: builds the binaries they drive into target/debug/ the way
# the test suite builds them. `cargo test` resolves features with the dev-dependencies, so a
# `cargo build -p ...` here would compile another variant of most crates; built this way, the
# scripts and `cargo nextest run` (in scripts/test.sh) share one build.
cargo test --workspace --no-run --locked --quiet
