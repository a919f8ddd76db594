#!/usr/bin/env python3
"""Seconds per frame of the PyTorch reference's W + G (warping module, then
SPADE decoder) on this machine's CPU, for the side-by-side figure of the
README's Speed section (ours: `npm run bench -- --only none --pipeline N`).

    python3 tools/reference/bench_wg.py --reference PATH [--frames 5] [--threads 2]

Builds WarpingNetwork and SPADEDecoder from the checkout's
src/config/models.yaml with PyTorch's default initialisation (time does
not depend on the values), float32, batch 1, in inference mode, and times
`frames` calls of W then G on random f_s and keypoints after one warm-up.
Needs only python3-torch and python3-yaml (Debian's).
"""
import argparse
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from dump import import_reference  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--reference', required=True, help='a KwaiVGI/LivePortrait checkout')
    ap.add_argument('--frames', type=int, default=5)
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    R = import_reference(a.reference)
    from src.modules.warping_network import WarpingNetwork
    from src.modules.spade_generator import SPADEDecoder
    mp = R.cfg['model_params']
    W = WarpingNetwork(**mp['warping_module_params']).eval()
    G = SPADEDecoder(**mp['spade_generator_params']).eval()
    g = torch.Generator().manual_seed(0)
    f_s = torch.randn(1, 32, 16, 64, 64, generator=g)
    kp_s = torch.rand(1, 21, 3, generator=g) - 0.5
    kp_d = torch.rand(1, 21, 3, generator=g) - 0.5
    times = []
    with torch.inference_mode():
        for i in range(a.frames + 1):
            t0 = time.perf_counter()
            out = W(f_s, kp_source=kp_s, kp_driving=kp_d)
            G(feature=out['out'])
            if i > 0:
                times.append(time.perf_counter() - t0)
    mean = sum(times) / len(times)
    print(f'reference W + G: {mean:.2f} s/frame ({1 / mean:.4f} frames/s), min {min(times):.2f} s, '
          f'{len(times)} frames after 1 warm-up, torch {torch.__version__}, {a.threads} threads')


if __name__ == '__main__':
    main()
