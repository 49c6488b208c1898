#!/usr/bin/env bash
# The whole test suite: installs what the tests need (scripts/install-test-deps.sh), then builds and
# runs every test, including the conformance trials against builtin, OpenSSH and Dropbear as local
# processes and every container target (images built offline by scripts/build-images.sh), and
# checks that the generated scenario catalogue is current. Run as root. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Formatting and lints first: they take seconds to minutes, and a red result is cheaper now than
# after the long tests.
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Build: the russh target image takes the binary this build makes, so nothing compiles twice.
cargo build --workspace --all-targets --locked
SSHSPEC_RUSSH_BIN=target/debug/sshspec-russh-server SSHSPEC_BIN=target/debug/sshspec \
  bash scripts/install-test-deps.sh
cargo run -q --locked -p sshspec-cli -- check
if ! diff -u scenarios/CATALOGUE.md <(cargo run -q --locked -p sshspec-cli -- list --format markdown); then
  echo "scenarios/CATALOGUE.md is stale: regenerate it with" >&2
  echo "  cargo run -p sshspec-cli -- list --format markdown > scenarios/CATALOGUE.md" >&2
  exit 1
fi
cargo test --workspace --locked --no-fail-fast
