#!/usr/bin/env bash
# Builds what a release ships, into dist/: the sshspec binary stripped, its debug information split
# off into sshspec.debug (linked by .gnu_debuglink, so gdb and perf find it beside the binary),
# shell completions and man pages generated from the clap definitions, and the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist
rm -rf "$out" && mkdir -p "$out/completions" "$out/man"
cargo build --release --locked -p sshspec-cli --bin sshspec
cp target/release/sshspec "$out/sshspec"
objcopy --only-keep-debug "$out/sshspec" "$out/sshspec.debug"
objcopy --strip-debug --strip-unneeded --add-gnu-debuglink="$out/sshspec.debug" "$out/sshspec"
for shell in bash zsh fish elvish powershell; do
  "$out/sshspec" completions "$shell" > "$out/completions/sshspec.$shell"
done
"$out/sshspec" man > "$out/man/sshspec.1"
for sub in run merge diagnose list coverage check targets images completions man; do
  "$out/sshspec" man "$sub" > "$out/man/sshspec-$sub.1"
done
size() { du -h "$1" | cut -f1; }
echo "dist: sshspec $(size "$out/sshspec") stripped (unstripped $(size target/release/sshspec)), sshspec.debug $(size "$out/sshspec.debug")"
