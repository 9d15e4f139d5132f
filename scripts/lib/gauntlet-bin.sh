# Sourced by the bench scripts before they change directory. Sets G, the gauntlet binary to
# measure: GAUNTLET_BIN (another build, say the one before a change; relative to where the
# script was started) made absolute, else this tree's release build, built now.
if [[ -n ${GAUNTLET_BIN:-} ]]; then
  G=$(realpath -e "$GAUNTLET_BIN")
else
  root=$(realpath "$(dirname "${BASH_SOURCE[0]}")/../..")
  cargo build --release -q --manifest-path "$root/Cargo.toml"
  G=$root/target/release/gauntlet
fi
