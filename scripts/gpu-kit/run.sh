#!/usr/bin/env bash
# LivePortrait GPU kit (built by scripts/gpu-kit/build.sh). On a bare x86-64
# Linux with a Vulkan driver: unpacks the carried Node and Dawn, runs the
# benchmark (ms per call of F, M, W, G, S after warm-up; the whole frame's
# ms and fps after the first frame; synthetic weights, batch 1), then the
# PyTorch reference's W + G where a python3 with torch is found, and prints
# ONE JSON line on stdout (progress goes to stderr), also on failure.
#
#   bash run.sh [--backend webgpu|cpu] [--frames N] [--runs N] [--warmup N]
#               [--only F,M,W,G,S|none] [--seed N] [--timeout SECONDS]
#               [--reference-frames N] [--reference-warmup N]
#               [--reference-device auto|cuda|cpu] [--no-reference]
#               [--python PY] [--carried-loader]
#
# Defaults: webgpu, 10 frames, 3 timed runs after 2 warm-ups, all networks,
# --timeout 480 (then the JSON line says what timed out; the process is
# killed 60 s later if it does not answer). --carried-loader uses the kit's
# libvulkan.so.1 even where the system has one (it is used anyway where the
# system has none). Needs bash, gzip and coreutils.
set -u
KIT=$(cd "${BASH_SOURCE[0]%/*}" 2>/dev/null && pwd) || KIT=$PWD
say() { echo "[run.sh] $*" >&2; }
usage_line='bash run.sh [--backend webgpu|cpu] [--frames N] [--runs N] [--warmup N] [--only F,M,W,G,S|none] [--seed N] [--timeout SECONDS] [--reference-frames N] [--reference-warmup N] [--reference-device auto|cuda|cpu] [--no-reference] [--python PY] [--carried-loader]'
bad() {
  echo "run.sh: $* (usage: $usage_line)" >&2
  exit 2
}
# A JSON string's body: backslashes, quotes and control characters escaped or dropped.
jstr() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//[$'\001'-$'\037']/ }
  printf '%s' "$s"
}
# The one JSON line when the benchmark itself could not give it.
fail_json() {
  local m
  m=$(jstr "$1")
  printf '{"kit":"liveportrait-gpu-kit","ok":false,"error":"%s","errors":["%s"],"backend":null,"adapter":null,"networks":{},"frame":null,"reference":null,"referenceReason":"not run","ratio":null}\n' "$m" "$m"
}

# Arguments: checked here (one line and exit 2 on a bad one), then passed on to the benchmark.
pass=()
timeout_s=480
carried_loader=0
is_int() { [[ $1 =~ ^[0-9]+$ ]]; }
while [ $# -gt 0 ]; do
  arg=$1
  shift
  case "$arg" in
    -h | --help)
      sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
      exit 0
      ;;
    --carried-loader) carried_loader=1; continue ;;
    --no-reference) pass+=("$arg"); continue ;;
  esac
  flag=${arg%%=*}
  case "$flag" in
    --backend | --frames | --runs | --warmup | --only | --seed | --timeout | --reference-frames | --reference-warmup | --reference-device | --python) ;;
    *) bad "unknown option '$arg'" ;;
  esac
  if [[ $arg == *=* ]]; then
    val=${arg#*=}
  else
    [ $# -gt 0 ] || bad "$flag needs a value"
    val=$1
    shift
  fi
  case "$flag" in
    --backend) [[ $val == webgpu || $val == cpu ]] || bad "--backend $val: the kit has webgpu and cpu only" ;;
    --frames | --seed | --reference-warmup) is_int "$val" || bad "$flag needs an integer ≥ 0, not '$val'" ;;
    --runs | --warmup | --reference-frames) is_int "$val" && [ "$val" -ge 1 ] || bad "$flag needs an integer ≥ 1, not '$val'" ;;
    --timeout) is_int "$val" && [ "$val" -ge 10 ] || bad "--timeout needs whole seconds ≥ 10, not '$val'"; timeout_s=$val; continue ;;
    --only) [[ ${val^^} =~ ^(NONE|[FMWGS](,[FMWGS])*)$ ]] || bad "--only $val: use a list of F, M, W, G, S, or none" ;;
    --reference-device) [[ $val == auto || $val == cuda || $val == cpu ]] || bad "--reference-device $val: use auto, cuda or cpu" ;;
  esac
  pass+=("$flag" "$val")
done

machine=$(uname -m 2>/dev/null || echo unknown)
if [ "$machine" != x86_64 ] || [ "$(uname -s 2>/dev/null)" != Linux ]; then
  say "this kit carries x86-64 Linux binaries; this machine is $(uname -s 2>/dev/null) $machine"
  fail_json "the kit carries x86-64 Linux binaries; this machine is $(uname -s 2>/dev/null) $machine"
  exit 1
fi
for t in gzip mkdir cp mv chmod rm; do
  command -v "$t" >/dev/null || { say "missing $t"; fail_json "run.sh needs $t (coreutils, gzip)"; exit 1; }
done
[ -f "$KIT/bin/node.gz" ] && [ -f "$KIT/app/kit.mjs" ] || { fail_json "$KIT is not a complete kit (no bin/node.gz or app/kit.mjs)"; exit 1; }

# Unpack next to the kit when it is writable (kept for the next run), else in a temporary folder.
if [ -w "$KIT" ]; then
  U=$KIT/.unpacked
  cleanup() { :; }
else
  U=$(mktemp -d "${TMPDIR:-/tmp}/lp-gpu-kit.XXXXXX") || { fail_json "cannot make a temporary folder"; exit 1; }
  cleanup() { rm -rf "$U"; }
fi
trap cleanup EXIT
stamp=$(cat "$KIT/kit.json" 2>/dev/null)
if [ -x "$U/node" ] && [ -f "$U/app/node_modules/webgpu/dist/linux-x64/dawn.node" ] && [ "$(cat "$U/.stamp" 2>/dev/null)" == "$stamp" ]; then
  say "using the unpacked Node and Dawn in $U"
else
  say "unpacking Node and Dawn into $U"
  rm -rf "$U"
  mkdir -p "$U/app/node_modules/webgpu/dist/linux-x64" || { fail_json "cannot write $U"; exit 1; }
  if ! { gzip -dc "$KIT/bin/node.gz" >"$U/node.part" && chmod +x "$U/node.part" && mv "$U/node.part" "$U/node" &&
    cp "$KIT/app/kit.mjs" "$U/app/" &&
    cp "$KIT"/app/node_modules/webgpu/*.* "$U/app/node_modules/webgpu/" &&
    gzip -dc "$KIT/app/node_modules/webgpu/dist/linux-x64/dawn.node.gz" >"$U/app/node_modules/webgpu/dist/linux-x64/dawn.node"; }; then
    fail_json "unpacking into $U failed (disk full?)"
    exit 1
  fi
  printf '%s' "$stamp" >"$U/.stamp"
fi
if ! node_err=$("$U/node" -e 0 2>&1); then
  node_err=${node_err%%$'\n'*}
  say "the carried Node does not run here: $node_err"
  fail_json "the carried Node does not run here: $node_err"
  exit 1
fi

# The Vulkan loader: the system's where there is one, else the kit's.
system_loader() {
  local d
  for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 /lib64 /usr/lib /lib /usr/local/lib; do
    [ -e "$d/libvulkan.so.1" ] && { echo "$d/libvulkan.so.1"; return 0; }
  done
  local ldc
  for ldc in ldconfig /sbin/ldconfig /usr/sbin/ldconfig; do
    if command -v "$ldc" >/dev/null 2>&1; then
      "$ldc" -p 2>/dev/null | grep -q 'libvulkan\.so\.1 ' && { echo "(ldconfig)"; return 0; }
      break
    fi
  done
  return 1
}
if [ "$carried_loader" = 1 ]; then
  export LD_LIBRARY_PATH="$KIT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LP_KIT_LOADER="the kit's (--carried-loader)"
  say "Vulkan loader: the kit's ($KIT/lib/libvulkan.so.1, --carried-loader)"
elif found=$(system_loader); then
  export LP_KIT_LOADER="the system's ($found)"
  say "Vulkan loader: the system's ($found)"
else
  export LD_LIBRARY_PATH="$KIT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LP_KIT_LOADER="the kit's (none on the system)"
  say "Vulkan loader: none on the system, the kit's ($KIT/lib/libvulkan.so.1)"
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -z "${VK_ICD_FILENAMES:-}" ] && [ -f "$nvidia_icd" ]; then
  export VK_DRIVER_FILES=$nvidia_icd VK_ICD_FILENAMES=$nvidia_icd
  say "Vulkan driver: NVIDIA's ICD ($nvidia_icd)"
  [ -d /usr/local/nvidia/lib64 ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/usr/local/nvidia/lib64"
elif [ -n "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  say "Vulkan driver: as set (VK_DRIVER_FILES=${VK_DRIVER_FILES:-} VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-})"
else
  icds=$(ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d 2>/dev/null | grep '\.json$' | tr '\n' ' ')
  say "Vulkan driver: the loader's search (ICD files: ${icds:-none found})"
fi

args=("${pass[@]}" --timeout "$timeout_s" --bench-wg "$KIT/python/bench_wg.py")
[ -d "$KIT/reference/src" ] && args+=(--reference "$KIT/reference")
cmd=("$U/node" "$U/app/kit.mjs" "${args[@]}")
if command -v timeout >/dev/null; then cmd=(timeout -k 15 $((timeout_s + 60)) "${cmd[@]}"); fi
say "running the benchmark: node app/kit.mjs ${args[*]}"
out=$U/stdout.$$
err=$U/stderr.$$
if command -v tee >/dev/null; then
  { "${cmd[@]}" 2>&1 >"$out"; } | tee "$err" >&2
  rc=${PIPESTATUS[0]}
else
  "${cmd[@]}" >"$out" 2>"$err"
  rc=$?
  cat "$err" >&2
fi
line=''
while IFS= read -r l || [ -n "$l" ]; do
  [[ $l == '{"kit":"liveportrait-gpu-kit"'* ]] && line=$l
done <"$out"
if [ -n "$line" ]; then
  printf '%s\n' "$line"
else
  last=''
  while IFS= read -r l || [ -n "$l" ]; do [ -n "$l" ] && last=$l; done <"$err"
  case "$rc" in
    124 | 137) why="killed after $((timeout_s + 60)) s (the benchmark did not answer its --timeout)" ;;
    *) why="exit status $rc" ;;
  esac
  fail_json "the benchmark ended ($why) without its JSON line; its last message: ${last:-none}"
  [ "$rc" -ne 0 ] || rc=1
fi
rm -f "$out" "$err"
exit "$rc"
