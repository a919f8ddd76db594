#!/usr/bin/env bash
# Builds the GPU kit: a self-contained folder, at most 60 MiB, that runs the
# benchmark of the five networks and of the whole frame on a bare x86-64
# Linux with a Vulkan driver (no npm, no Node needed there), beside the
# PyTorch reference's W + G where a python3 with torch is found.
#
#   scripts/gpu-kit/build.sh DIR [--reference PATH] [--node PATH]
#
# DIR          the kit folder (made; an earlier kit there is replaced; any other non-empty folder is refused)
# --reference  a KwaiVGI/LivePortrait checkout (default $LP_REFERENCE): its src/ tree goes into the kit
#              for the side-by-side W + G; without one the kit is built without it (and says so)
# --node       the Node binary to carry (default: the node running here; linux x64)
#
# The kit holds: run.sh (the entry), kit.json (what was built from what), bin/node.gz (Node, gzip -9),
# app/kit.mjs (scripts/gpu-kit/kit.ts bundled by esbuild: the library, tfjs with its webgpu and cpu
# backends, the benchmark), app/node_modules/webgpu (Dawn's Node binding for linux-x64, dawn.node
# gzipped), lib/libvulkan.so.1 (the Vulkan loader, used only where the system has none),
# python/bench_wg.py, and reference/ (the reference's src/ and LICENSE). See README.md, "On a GPU".
set -euo pipefail

LIMIT_BYTES=$((60 * 1024 * 1024))
die() {
  echo "build.sh: $*" >&2
  exit 1
}
usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }

dir=''
reference=${LP_REFERENCE:-}
node_bin=''
while [ $# -gt 0 ]; do
  case "$1" in
    --reference) [ $# -ge 2 ] || die "--reference needs a path"; reference=$2; shift 2 ;;
    --reference=*) reference=${1#*=}; shift ;;
    --node) [ $# -ge 2 ] || die "--node needs a path"; node_bin=$2; shift 2 ;;
    --node=*) node_bin=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option '$1' (scripts/gpu-kit/build.sh DIR [--reference PATH] [--node PATH])" ;;
    *) [ -z "$dir" ] || die "one DIR only (got '$dir' and '$1')"; dir=$1; shift ;;
  esac
done
[ -n "$dir" ] || die "no DIR given (scripts/gpu-kit/build.sh DIR [--reference PATH] [--node PATH])"

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
esbuild=$root/node_modules/.bin/esbuild
[ -x "$esbuild" ] || die "esbuild not found at node_modules/.bin/esbuild: run npm ci"
dawn=$root/node_modules/webgpu/dist/linux-x64/dawn.node
[ -f "$dawn" ] || die "Dawn's binding not found at node_modules/webgpu/dist/linux-x64/dawn.node: npm ci (optional dependency webgpu)"
[ -f node_modules/@tensorflow/tfjs-backend-webgpu/package.json ] || die "@tensorflow/tfjs-backend-webgpu is not installed: npm ci"

# The Node binary: the real file behind `node` (not a version manager's shim), linux x64.
if [ -z "$node_bin" ]; then
  command -v node >/dev/null || die "no node on the PATH (give --node PATH)"
  node_bin=$(node -p 'process.execPath')
fi
[ -x "$node_bin" ] || die "--node $node_bin: not an executable"
node_target=$("$node_bin" -p 'process.platform + "-" + process.arch + " " + process.version') || die "--node $node_bin does not run here"
case "$node_target" in linux-x64\ *) ;; *) die "--node $node_bin is $node_target: the kit needs a linux-x64 Node" ;; esac

if [ -n "$reference" ]; then
  [ -f "$reference/src/config/models.yaml" ] || die "--reference $reference: no src/config/models.yaml (want a KwaiVGI/LivePortrait checkout)"
fi

# DIR: made fresh; only an earlier kit (kit.json of ours) is replaced.
if [ -e "$dir" ]; then
  [ -d "$dir" ] || die "$dir exists and is not a folder"
  if [ -n "$(ls -A "$dir")" ]; then
    grep -q '"kit": *"liveportrait-gpu-kit"' "$dir/kit.json" 2>/dev/null || die "$dir is not empty and holds no earlier kit: refusing to replace it"
    rm -rf "$dir"
  fi
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say() { echo "build.sh: $*" >&2; }

commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ] || commit="$commit+dirty"
built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
pkgver() { "$node_bin" -p "require('$root/node_modules/$1/package.json').version"; }
v_webgpu=$(pkgver webgpu)
v_tfwebgpu=$(pkgver @tensorflow/tfjs-backend-webgpu)
v_lp=$("$node_bin" -p "require('$root/package.json').version")
node_version=${node_target#* }

# 1. The bundle: the benchmark entry with the library, tfjs and its webgpu and cpu backends.
#    Left out: Dawn (loaded from app/node_modules/webgpu), the wasm backend and tfjs-node (not carried).
say "bundling scripts/gpu-kit/kit.ts (esbuild)"
mkdir -p "$dir/app/node_modules/webgpu/dist/linux-x64" "$dir/bin" "$dir/lib" "$dir/python"
info=$(printf '{"commit":"%s","builtAt":"%s","versions":{"liveportrait":"%s","webgpu":"%s","tfjsBackendWebgpu":"%s","kitNode":"%s"}}' \
  "$commit" "$built_at" "$v_lp" "$v_webgpu" "$v_tfwebgpu" "$node_version")
"$esbuild" scripts/gpu-kit/kit.ts --bundle --platform=node --format=esm --target=node20 \
  --outfile="$dir/app/kit.mjs" --log-level=warning --legal-comments=none \
  --external:webgpu --external:@tensorflow/tfjs-backend-wasm --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
  --define:KIT_INFO="$info" \
  --banner:js="import { createRequire as __kitRequire } from 'node:module'; const require = __kitRequire(import.meta.url);"

# 2. Dawn's binding: its package.json and index.js, and linux-x64's dawn.node (gzipped).
say "Dawn's binding (webgpu $v_webgpu, linux-x64)"
for f in package.json index.js LICENSE.md; do cp "node_modules/webgpu/$f" "$dir/app/node_modules/webgpu/"; done
gzip -9 -c "$dawn" >"$dir/app/node_modules/webgpu/dist/linux-x64/dawn.node.gz"

# 3. Node (gzip -9: about a third of its size).
say "Node $node_version from $node_bin (gzip -9)"
gzip -9 -c "$node_bin" >"$dir/bin/node.gz"

# 4. The Vulkan loader: this system's libvulkan.so.1, else Debian's libvulkan1 package (apt-get download).
loader=''
for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 /lib64; do
  if [ -e "$d/libvulkan.so.1" ]; then loader=$(readlink -f "$d/libvulkan.so.1"); break; fi
done
loader_from=''
if [ -n "$loader" ]; then
  loader_from="$loader$(command -v dpkg-query >/dev/null && dpkg-query -W -f=' (libvulkan1 ${Version})' libvulkan1 2>/dev/null || true)"
else
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || die "no libvulkan.so.1 here and no apt-get to download libvulkan1: install libvulkan1"
  say "no libvulkan.so.1 here: apt-get download libvulkan1"
  (cd "$work" && apt-get download libvulkan1 >&2) || die "apt-get download libvulkan1 failed"
  deb=$(ls "$work"/libvulkan1_*.deb | head -n 1)
  dpkg-deb -x "$deb" "$work/deb"
  loader=$(readlink -f "$work"/deb/usr/lib/x86_64-linux-gnu/libvulkan.so.1)
  loader_from="$(basename "$deb")"
fi
say "Vulkan loader from $loader_from"
cp "$loader" "$dir/lib/libvulkan.so.1"

# 5. The reference's W + G timer and, when given, the reference's sources.
cp tools/reference/bench_wg.py "$dir/python/"
ref_json=null
if [ -n "$reference" ]; then
  # Its own commit: of a checkout whose top is PATH (not of a repository PATH merely lies in), else PATH/COMMIT.
  ref_abs=$(cd "$reference" && pwd -P)
  ref_commit=unknown
  if [ "$(git -C "$reference" rev-parse --show-toplevel 2>/dev/null)" == "$ref_abs" ]; then
    ref_commit=$(git -C "$reference" rev-parse HEAD)
  elif [ -f "$reference/COMMIT" ]; then
    ref_commit=$(head -n 1 "$reference/COMMIT")
  fi
  say "reference sources from $reference ($ref_commit)"
  mkdir -p "$dir/reference"
  (cd "$reference" && tar --exclude=__pycache__ --exclude='*.pyc' -cf - src) | tar -xf - -C "$dir/reference"
  for f in LICENSE LICENSE.md; do [ -f "$reference/$f" ] && cp "$reference/$f" "$dir/reference/"; done
  echo "$ref_commit" >"$dir/reference/COMMIT"
  ref_json="\"$ref_commit\""
else
  say "no --reference (nor LP_REFERENCE): the kit is built WITHOUT the reference's sources; its JSON will say reference null"
fi

# 6. The entry and the manifest.
cp scripts/gpu-kit/run.sh "$dir/run.sh"
chmod +x "$dir/run.sh"
files=$(cd "$dir" && find . -type f ! -name kit.json | LC_ALL=C sort | sed 's|^\./||')
nfiles=$(echo "$files" | wc -l)
{
  printf '{\n  "kit": "liveportrait-gpu-kit",\n  "commit": "%s",\n  "builtAt": "%s",\n' "$commit" "$built_at"
  printf '  "versions": {"liveportrait": "%s", "node": "%s", "webgpu": "%s", "tfjsBackendWebgpu": "%s"},\n' "$v_lp" "$node_version" "$v_webgpu" "$v_tfwebgpu"
  printf '  "vulkanLoader": "%s",\n  "referenceCommit": %s,\n' "$loader_from" "$ref_json"
  printf '  "files": %s,\n' "$nfiles"
  printf '  "top": [%s]\n}\n' "$(cd "$dir" && ls -A | grep -v '^kit.json$' | sed 's/.*/"&"/' | paste -sd, -)"
} >"$dir/kit.json"

bytes=$(du -sb "$dir" | cut -f1)
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
if [ "$bytes" -gt "$LIMIT_BYTES" ]; then
  echo "build.sh: the kit is $mib MiB ($bytes bytes), over the 60 MiB limit:" >&2
  (cd "$dir" && du -ab . | sort -rn | head -n 8) >&2
  exit 1
fi
echo "build.sh: kit $dir: $mib MiB ($bytes bytes, limit 60 MiB), $nfiles files; reference: $([ -n "$reference" ] && echo included || echo 'not included')" >&2
