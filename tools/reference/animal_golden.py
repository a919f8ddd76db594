#!/usr/bin/env python3
"""test/fixtures/animal_x_d.json from a pipeline_animal.safetensors written by
`dump.py --modules pipeline_animal`: x_s, the motion multiplier and x_d of each
option set (a few KB, committed so that CI checks the animal keypoint formula
against the reference without the full fixture).

    python3 tools/reference/animal_golden.py DIR/pipeline_animal.safetensors test/fixtures/animal_x_d.json
"""
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import read_safetensors  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    t, meta = read_safetensors(sys.argv[1])
    dump = json.loads(meta['dump'])
    names = sorted(k[:-len('/x_d')] for k in t if k.endswith('/x_d'))
    f = lambda a: [float(v) for v in a.astype('float32').ravel()]  # noqa: E731 (float32 values, shortest repr)
    out = {
        'about': 'LivePortraitPipelineAnimal.execute (reference) x_d per option set, 3 driving frames x 21 x 3, row-major; '
                 'inputs: source_rgb256 and driving_rgb256 of shared/parity/seed1/pipeline.safetensors; weights: seed1 '
                 '(tools/reference/dump.py --modules pipeline_animal, then tools/reference/animal_golden.py)',
        'dump_command': dump.get('command'),
        'reference_commit': dump.get('reference_commit'),
        'torch_version': dump.get('torch_version'),
        'options': {n: json.loads(meta[n]) for n in names},
        'x_s': f(t['x_s']),
        'motion_multiplier': {n: float(t[n + '/motion_multiplier'][0]) for n in names},
        'x_d': {n: f(t[n + '/x_d']) for n in names},
    }
    with open(sys.argv[2], 'w') as fh:
        json.dump(out, fh, separators=(',', ':'))
        fh.write('\n')


if __name__ == '__main__':
    main()
