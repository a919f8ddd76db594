#!/usr/bin/env bash
# System packages for the test suite on Debian 12 (bookworm), run as root in CI:
#
#   - a software Vulkan driver, so that the `webgpu` tfjs backend runs
#     without a GPU (Dawn's binding, npm package webgpu@0.6.2, on Vulkan):
#     Mesa's lavapipe (llvmpipe) from bookworm-backports (Mesa 25; the
#     stock Mesa 22.3 lavapipe is rejected by Dawn), else SwiftShader from
#     Debian's chromium package (about 10x slower);
#   - Debian's chromium, for browser tests;
#   - Debian's redis-server, for the queue tests of `liveportrait batch
#     --queue` (test/batch.test.ts starts its own on a free loopback port;
#     the service the package starts is not used).
#
# ffmpeg is not installed here: it comes from npm (@ffmpeg-installer/ffmpeg).
#
# Idempotent and quick when everything is there (dpkg -s before any
# apt-get update). Prints the driver it set up, and for the SwiftShader
# fallback the environment to export:
#   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
#
# Usage: sudo scripts/setup-test-env.sh [--no-chromium]
set -euo pipefail

want_chromium=1
for a in "$@"; do
  case "$a" in
    --no-chromium) want_chromium=0 ;;
    -h | --help)
      sed -n '2,21p' "$0"
      exit 0
      ;;
    *)
      echo "setup-test-env: unknown option $a" >&2
      exit 2
      ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-test-env: run as root (it installs Debian packages)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  echo "setup-test-env: needs Debian (apt-get, dpkg)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
BACKPORTS_LIST=/etc/apt/sources.list.d/bookworm-backports.sources
MESA_MIN_MAJOR=24 # Dawn rejects the Mesa 22.3 lavapipe of bookworm

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }
version_of() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }
mesa_ok() {
  installed mesa-vulkan-drivers && installed libvulkan1 || return 1
  local v major
  v=$(version_of mesa-vulkan-drivers)
  major=${v%%.*}
  major=${major#*:}
  [ "${major:-0}" -ge "$MESA_MIN_MAJOR" ] 2>/dev/null
}

# apt-get with retries while another process holds the dpkg/apt lock.
apt_retry() {
  local i out rc
  for i in $(seq 1 60); do
    out=$(mktemp)
    rc=0
    apt-get -o DPkg::Lock::Timeout=60 "$@" >"$out" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ]; then
      rm -f "$out"
      return 0
    fi
    if ! grep -qiE 'could not get lock|unable to acquire|lock-frontend|is held by process' "$out"; then
      tail -n 20 "$out" >&2
      rm -f "$out"
      return "$rc"
    fi
    rm -f "$out"
    echo "setup-test-env: apt is locked by another process, retrying ($i)" >&2
    sleep 10
  done
  return 1
}

updated=0
apt_update() {
  [ "$updated" -eq 1 ] && return 0
  apt_retry update -qq
  updated=1
}

# The mirror of the configured bookworm sources (deb822 or one-line format).
debian_mirror() {
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/ && /debian\/?$/ && !/security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

add_backports() {
  if grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then return 0; fi
  local mirror
  mirror=$(debian_mirror)
  cat >"$BACKPORTS_LIST" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  echo "setup-test-env: added bookworm-backports ($mirror)"
  updated=0
}

driver=""
if mesa_ok; then
  driver="lavapipe"
else
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  if [ "$codename" = bookworm ]; then
    add_backports
    apt_update
    if apt_retry install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 && mesa_ok; then
      driver="lavapipe"
    fi
  else
    # Newer Debian: the stock Mesa is recent enough.
    apt_update
    if apt_retry install -y -qq mesa-vulkan-drivers libvulkan1 && mesa_ok; then driver="lavapipe"; fi
  fi
fi

if [ "$want_chromium" -eq 1 ] || [ -z "$driver" ]; then
  if ! installed chromium; then
    apt_update
    apt_retry install -y -qq chromium || echo "setup-test-env: chromium did not install" >&2
  fi
fi

if ! command -v redis-server >/dev/null; then
  apt_update
  apt_retry install -y -qq redis-server || echo "setup-test-env: redis-server did not install" >&2
fi

if [ -z "$driver" ] && [ -f /usr/lib/chromium/vk_swiftshader_icd.json ]; then
  driver="swiftshader"
fi

case "$driver" in
  lavapipe)
    icd=$(ls /usr/share/vulkan/icd.d/lvp_icd*.json 2>/dev/null | head -n 1)
    echo "setup-test-env: Vulkan driver: Mesa lavapipe (llvmpipe) $(version_of mesa-vulkan-drivers), ICD ${icd:-?}"
    ;;
  swiftshader)
    echo "setup-test-env: Vulkan driver: SwiftShader from chromium $(version_of chromium); export"
    echo "  VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json"
    installed libvulkan1 || echo "  LD_LIBRARY_PATH=/usr/lib/chromium  (libvulkan1 is missing)"
    ;;
  *)
    echo "setup-test-env: no software Vulkan driver could be installed; the webgpu backend will not start (wasm still works)" >&2
    exit 1
    ;;
esac
if installed chromium; then echo "setup-test-env: chromium $(version_of chromium)"; fi
if command -v redis-server >/dev/null; then echo "setup-test-env: $(redis-server --version | cut -d' ' -f1-3)"; fi
