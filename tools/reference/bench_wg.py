#!/usr/bin/env python3
"""Seconds per frame of the PyTorch reference's W + G (warping module, then
SPADE decoder), on this machine's CPU or GPU, for the side-by-side figures
of the README's Speed section (ours: `npm run bench -- --only none --pipeline N`)
and of the GPU kit (scripts/gpu-kit).

    python3 tools/reference/bench_wg.py --reference PATH [--frames 5] [--warmup 1]
        [--device auto|cuda|cpu] [--threads N] [--half] [--json]

Builds WarpingNetwork and SPADEDecoder from the checkout's
src/config/models.yaml with PyTorch's default initialisation (time does
not depend on the values), float32, batch 1, in inference mode, and times
`frames` calls of W then G on random f_s and keypoints after `warmup`
calls. `--device auto` (the default) takes cuda when
torch.cuda.is_available(), else the CPU; on cuda each frame ends with
torch.cuda.synchronize(), and TF32 is turned off (float32 throughout, as
our webgpu kernels compute). `--half` times a second pass under
torch.autocast(float16), the reference's own default on CUDA
(flag_use_half_precision). `--json` prints one JSON line instead of the
sentence. Needs only torch and yaml (Debian: python3-torch, python3-yaml);
of the checkout, only src/config/models.yaml and src/modules are imported.
"""
import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # leave no __pycache__ in the reference checkout


def import_modules(ref):
    """WarpingNetwork, SPADEDecoder and the model config of a KwaiVGI/LivePortrait checkout."""
    ref = os.path.abspath(ref)
    cfg_path = os.path.join(ref, 'src', 'config', 'models.yaml')
    if not os.path.isfile(cfg_path):
        sys.exit(f'--reference {ref}: no src/config/models.yaml (want a KwaiVGI/LivePortrait checkout)')
    import yaml
    sys.path.insert(0, ref)
    from src.modules.warping_network import WarpingNetwork
    from src.modules.spade_generator import SPADEDecoder
    with open(cfg_path) as f:
        cfg = yaml.load(f, Loader=yaml.SafeLoader)
    return WarpingNetwork, SPADEDecoder, cfg['model_params']


def time_frames(torch, W, G, inputs, frames, warmup, device, autocast):
    f_s, kp_s, kp_d = inputs
    times = []
    ctx = torch.autocast(device_type='cuda', dtype=torch.float16) if autocast else None
    with torch.inference_mode():
        for i in range(warmup + frames):
            t0 = time.perf_counter()
            if ctx is not None:
                with ctx:
                    out = W(f_s, kp_source=kp_s, kp_driving=kp_d)
                    G(feature=out['out'])
            else:
                out = W(f_s, kp_source=kp_s, kp_driving=kp_d)
                G(feature=out['out'])
            if device == 'cuda':
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    mean = sum(times) / len(times)
    return {'msPerFrame': mean * 1000, 'msMin': min(times) * 1000, 'fps': 1 / mean, 'frames': len(times)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--reference', required=True, help='a KwaiVGI/LivePortrait checkout (its src/ tree is enough)')
    ap.add_argument('--frames', type=int, default=5)
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--device', choices=['auto', 'cuda', 'cpu'], default='auto')
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--half', action='store_true', help='also time under autocast float16 (cuda only)')
    ap.add_argument('--json', action='store_true', help='one JSON line on stdout')
    a = ap.parse_args()
    if a.frames < 1 or a.warmup < 0:
        sys.exit('--frames must be at least 1 and --warmup at least 0')
    import torch
    device = a.device
    if device == 'auto':
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    elif device == 'cuda' and not torch.cuda.is_available():
        sys.exit('--device cuda: torch.cuda.is_available() is False')
    torch.set_num_threads(a.threads)
    if device == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    WarpingNetwork, SPADEDecoder, mp = import_modules(a.reference)
    W = WarpingNetwork(**mp['warping_module_params']).eval().to(device)
    G = SPADEDecoder(**mp['spade_generator_params']).eval().to(device)
    g = torch.Generator().manual_seed(0)
    inputs = [t.to(device) for t in (torch.randn(1, 32, 16, 64, 64, generator=g),
                                     torch.rand(1, 21, 3, generator=g) - 0.5,
                                     torch.rand(1, 21, 3, generator=g) - 0.5)]
    fp32 = time_frames(torch, W, G, inputs, a.frames, a.warmup, device, autocast=False)
    half = None
    if a.half and device == 'cuda':
        half = time_frames(torch, W, G, inputs, a.frames, a.warmup, device, autocast=True)
    report = {
        'device': device,
        'deviceName': torch.cuda.get_device_name(0) if device == 'cuda' else 'cpu',
        'torch': torch.__version__,
        'cuda': torch.version.cuda if device == 'cuda' else None,
        'threads': a.threads if device == 'cpu' else None,
        'warmup': a.warmup,
        'tf32': False if device == 'cuda' else None,
        'fp32': fp32,
        'autocastFp16': half,
    }
    if a.json:
        print(json.dumps(report), flush=True)
        return
    where = report['deviceName'] if device == 'cuda' else f'cpu, {a.threads} threads'
    print(f"reference W + G: {fp32['msPerFrame'] / 1000:.2f} s/frame ({fp32['fps']:.4f} frames/s), "
          f"min {fp32['msMin'] / 1000:.2f} s, {fp32['frames']} frames after {a.warmup} warm-up, "
          f'torch {torch.__version__}, {where}')
    if half:
        print(f"  under autocast float16: {half['msPerFrame']:.2f} ms/frame, min {half['msMin']:.2f} ms")


if __name__ == '__main__':
    main()
