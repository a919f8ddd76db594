#!/usr/bin/env python3
"""Compare two fixture directories tensor by tensor (max abs difference).

usage: compare.py A_DIR B_DIR [--files stem,stem] [--markdown]
Prints, per file and per tensor present in both: shape, max |a-b|, max |a| (scale); for U8
tensors also the number of differing elements. Reports tensors present on one side only and
compares weights_manifest.json ('seed' and 'modules').
Exit status 1 when a shape differs or a tensor is missing from B.
"""
import sys
sys.dont_write_bytecode = True  # leave no __pycache__ here or in the reference checkout
import argparse
import glob
import json
import os

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import read_safetensors  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('a')
    ap.add_argument('b')
    ap.add_argument('--files', help='comma list of file stems (default: all *.safetensors of A)')
    ap.add_argument('--markdown', action='store_true')
    args = ap.parse_args()
    bad = False
    stems = (args.files.split(',') if args.files else
             sorted(os.path.basename(p)[:-len('.safetensors')] for p in glob.glob(os.path.join(args.a, '*.safetensors'))))
    rows = []
    for stem in stems:
        pa, pb = (os.path.join(d, stem + '.safetensors') for d in (args.a, args.b))
        if not os.path.isfile(pb):
            print(f'{stem}: missing in {args.b}')
            bad = True
            continue
        A, _ = read_safetensors(pa)
        B, _ = read_safetensors(pb)
        fmax = 0.0
        for k, a in A.items():
            if k not in B:
                rows.append((stem, k, list(a.shape), 'MISSING in B', '', ''))
                bad = True
                continue
            b = B[k]
            if a.shape != b.shape:
                rows.append((stem, k, list(a.shape), f'SHAPE {list(b.shape)}', '', ''))
                bad = True
                continue
            d = np.abs(a.astype(np.float64) - b.astype(np.float64))
            m = float(d.max()) if d.size else 0.0
            fmax = max(fmax, m)
            extra = f'{int((d != 0).sum())} of {d.size} differ' if a.dtype == np.uint8 else ''
            rows.append((stem, k, list(a.shape), f'{m:.3g}', f'{float(np.abs(a).max()):.3g}', extra))
        for k in B:
            if k not in A:
                rows.append((stem, k, list(B[k].shape), 'only in B', '', ''))
        rows.append((stem, '(file max)', '', f'{fmax:.3g}', '', ''))
    if args.markdown:
        print('| file | tensor | shape | max abs diff | max abs value | note |')
        print('| --- | --- | --- | --- | --- | --- |')
        for r in rows:
            print('| ' + ' | '.join(str(x) for x in r) + ' |')
    else:
        for r in rows:
            print(f'{r[0]:30s} {r[1]:28s} {str(r[2]):22s} {r[3]:>12s} {r[4]:>10s} {r[5]}')
    ma, mb = (os.path.join(d, 'weights_manifest.json') for d in (args.a, args.b))
    if os.path.isfile(ma) and os.path.isfile(mb):
        ja, jb = json.load(open(ma)), json.load(open(mb))
        same = ja.get('seed') == jb.get('seed') and ja.get('modules') == jb.get('modules')
        print(f'weights_manifest.json: seed+modules {"identical" if same else "DIFFER"}')
        if not same:
            for mod in sorted(set(ja.get('modules', {})) | set(jb.get('modules', {}))):
                if ja['modules'].get(mod) != jb['modules'].get(mod):
                    print('  differs:', mod)
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
