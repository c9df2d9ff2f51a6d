#!/usr/bin/env bash
# A second Vulkan driver beside the system's: Mesa 25.0.7's lavapipe from Debian
# bookworm-backports, unpacked into a cache folder (never installed, the system's Mesa 22.3 stays),
# so the portability suite can compare two driver versions on one machine.
#
# Usage: scripts/second-mesa.sh [ENV_FILE]
# Prints (or writes to ENV_FILE) the two lines to export:
#   VK_ICD_FILENAMES=<system lavapipe>:<unpacked lavapipe>   LD_LIBRARY_PATH=<unpacked libs>
# Quiet and idempotent: a second call only prints the lines. Needs root (and the network) the
# first time, to add the backports line to apt and download three packages.
# The cache: $RESNET_WGPU_MESA_CACHE, else ~/.cache/resnet-wgpu/mesa-backports.
set -euo pipefail

cache="${RESNET_WGPU_MESA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/resnet-wgpu/mesa-backports}"
arch="$(uname -m)"
multiarch="$arch-linux-gnu"
lib="$cache/root/usr/lib/$multiarch"
icd="$cache/lvp_icd.$arch.json"
system_icd="/usr/share/vulkan/icd.d/lvp_icd.$arch.json"
# The driver and the libdrm it was built against; it links the system's LLVM 15 (libLLVM-15.so.1,
# from bookworm's libllvm15, which the system's Mesa already pulls in).
packages=(mesa-vulkan-drivers libdrm2 libdrm-amdgpu1)

fail() {
  echo "second-mesa.sh: $*" >&2
  exit 1
}

if [[ ! -f "$icd" || ! -f "$lib/libvulkan_lvp.so" ]]; then
  command -v apt-get >/dev/null || fail "needs apt-get (Debian bookworm)"
  if ! apt-cache policy mesa-vulkan-drivers 2>/dev/null | grep -q "bookworm-backports"; then
    ((EUID == 0)) || fail "run once as root: it adds bookworm-backports to apt's sources"
    if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo "deb http://deb.debian.org/debian bookworm-backports main" \
        >/etc/apt/sources.list.d/bookworm-backports.list
    fi
    apt-get update -qq
  fi
  downloads="$(mktemp -d)"
  trap 'rm -rf "$downloads"' EXIT
  # apt's sandbox user cannot write into a root-owned mktemp folder.
  chmod 755 "$downloads"
  (cd "$downloads" && apt-get download -qq "${packages[@]/%//bookworm-backports}" 2>/dev/null) ||
    fail "apt-get download ${packages[*]} from bookworm-backports failed"
  rm -rf "$cache/root"
  mkdir -p "$cache/root"
  for deb in "$downloads"/*.deb; do
    dpkg -x "$deb" "$cache/root"
  done
  [[ -f "$lib/libvulkan_lvp.so" ]] || fail "the packages hold no $lib/libvulkan_lvp.so"
  missing="$(LD_LIBRARY_PATH="$lib" ldd "$lib/libvulkan_lvp.so" | grep "not found" || true)"
  [[ -z "$missing" ]] || fail "libvulkan_lvp.so needs libraries this machine lacks: $missing"
  # The package's manifest names the library bare (found on the loader's path); point it at the
  # unpacked file, written last so a half-done unpack is redone next time.
  sed "s|\"library_path\": *\"[^\"]*\"|\"library_path\": \"$lib/libvulkan_lvp.so\"|" \
    "$cache/root/usr/share/vulkan/icd.d/lvp_icd.json" >"$icd.tmp"
  grep -q "$lib/libvulkan_lvp.so" "$icd.tmp" || fail "cannot rewrite lvp_icd.json's library_path"
  mv "$icd.tmp" "$icd"
fi
[[ -f "$system_icd" ]] || fail "no system lavapipe ($system_icd): apt-get install mesa-vulkan-drivers"
lines="VK_ICD_FILENAMES=$system_icd:$icd
LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if (($#)); then
  printf '%s\n' "$lines" >"$1"
else
  printf '%s\n' "$lines"
fi
