# Sourced by scripts/run.sh and the bench scripts: the whole workspace in release mode, the same
# build for each, so one serves them all. Building only some packages resolves features another
# way and compiles other variants of most crates, RocksDB's C++ included (~10 minutes here).
cargo build --release --workspace --locked --quiet
