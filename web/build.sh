#!/usr/bin/env bash
# Builds the in-browser demo into a static site folder (default web/dist/).
#
#   web/build.sh [OUT_DIR]
#   python3 -m http.server -d web/dist 8000     # then open http://localhost:8000
#
# Needs: the wasm32-unknown-unknown target (`rustup target add wasm32-unknown-unknown`) and
# wasm-bindgen-cli at exactly the version of wasm-bindgen in Cargo.lock
# (`cargo install wasm-bindgen-cli --version X`). Optimises the .wasm with wasm-opt from the npm
# package binaryen (`npm ci` in web/) when it is there; WASM_OPT=0 skips that. Debian's own wasm-opt
# is too old (its output fails in browsers) and is never used.
# Honours CARGO_TARGET_DIR. Prints the .wasm size, raw and gzipped.
set -euo pipefail

web="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$web")"
out="$(realpath -m "${1:-$web/dist}")"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

die() {
  echo "web/build.sh: $*" >&2
  exit 1
}

# wasm-bindgen's CLI must match the library in Cargo.lock exactly, or the glue breaks.
want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$root/Cargo.lock")"
[[ -n "$want" ]] || die "cannot find wasm-bindgen's version in Cargo.lock"
command -v wasm-bindgen >/dev/null ||
  die "wasm-bindgen is not installed; run: cargo install wasm-bindgen-cli --version $want"
have="$(wasm-bindgen --version | awk '{ print $2 }')"
[[ "$have" == "$want" ]] ||
  die "wasm-bindgen $have is installed but Cargo.lock has $want; run: cargo install wasm-bindgen-cli --version $want --force"
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown ||
  die "the wasm32 target is missing; run: rustup target add wasm32-unknown-unknown"

echo "building the wasm module (cargo --profile web)..." >&2
cargo build --quiet --manifest-path "$root/Cargo.toml" -p resnet-wgpu-web \
  --target wasm32-unknown-unknown --profile web
wasm="$target_dir/wasm32-unknown-unknown/web/resnet_wgpu_web.wasm"
[[ -f "$wasm" ]] || die "cargo did not produce $wasm"

stage="$out.tmp"
rm -rf "$stage"
mkdir -p "$stage/pkg" "$stage/models" "$stage/samples"
wasm-bindgen --target web --no-typescript --out-dir "$stage/pkg" "$wasm"

bg="$stage/pkg/resnet_wgpu_web_bg.wasm"
wasm_opt="$web/node_modules/.bin/wasm-opt"
if [[ "${WASM_OPT:-1}" == 0 ]]; then
  echo "skipping wasm-opt (WASM_OPT=0)" >&2
elif [[ -x "$wasm_opt" ]]; then
  echo "optimising with binaryen's wasm-opt..." >&2
  # Exactly the features rustc's wasm32 target emits by default; nothing newer.
  "$wasm_opt" -Oz --strip-debug --strip-producers \
    --enable-bulk-memory --enable-mutable-globals --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-reference-types --enable-multivalue \
    "$bg" -o "$bg.opt"
  mv "$bg.opt" "$bg"
else
  echo "note: $wasm_opt not found (run 'npm ci' in web/): the .wasm is not optimised" >&2
fi

cp "$web"/static/* "$stage/"
cp "$root/assets/resnet20_fmnist.safetensors" "$stage/models/"
cp "$root"/assets/samples/*.png "$web"/samples/*.png "$stage/samples/"

rm -rf "$out"
mv "$stage" "$out"

raw=$(stat -c %s "$out/pkg/resnet_wgpu_web_bg.wasm")
gz=$(gzip -9 -c "$out/pkg/resnet_wgpu_web_bg.wasm" | wc -c)
echo "wrote $out" >&2
echo "wasm: $raw bytes raw, $gz bytes gzipped" >&2
