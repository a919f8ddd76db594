#!/usr/bin/env python3
"""test/fixtures/animal_x_d.json from a pipeline_animal.safetensors written by
`dump.py --modules pipeline_animal`: x_s, the motion multiplier and x_d of each
option set (a few KB, committed so that CI checks the animal keypoint formula
against the reference without the full fixture). The golden names what it was
made from: the weights' seed, the frame count, and the inputs (the fixture
directory given to dump.py --inputs-from, and the sha256 of source_rgb256 and
driving_rgb256) so that the test finds those inputs whatever LP_PARITY_DIR is.

    python3 tools/reference/animal_golden.py DIR/pipeline_animal.safetensors test/fixtures/animal_x_d.json
"""
import hashlib
import json
import os
import re
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
    seed = re.match(r'synthetic seed (\d+)', dump.get('weights', ''))
    if not seed:
        sys.exit('the dump was not made with synthetic weights (dump.py --synthetic SEED): the golden could not name them')
    inputs_from = json.loads(dump.get('inputs') or '{}').get('inputs_from')
    if not inputs_from:
        sys.exit('the dump did not take its inputs from a fixture directory (dump.py --inputs-from DIR)')
    frames = int(t['driving_rgb256'].shape[0])
    digest = lambda a: {'shape': list(a.shape), 'sha256': hashlib.sha256(a.tobytes()).hexdigest()}  # noqa: E731
    out = {
        'about': 'LivePortraitPipelineAnimal.execute (reference) x_d per option set, `frames` driving frames x 21 x 3, row-major; '
                 'inputs: source_rgb256 and driving_rgb256 of the fixture directory `inputs.fixture` (%s), identified by their sha256; '
                 'weights: the synthetic rule with seed `seed` (M and S only, no explicit tensors; '
                 'tools/reference/dump.py --modules pipeline_animal, then tools/reference/animal_golden.py)' % os.path.join('shared', 'parity', os.path.basename(inputs_from)),
        'seed': int(seed.group(1)),
        'frames': frames,
        'inputs': {'fixture': os.path.basename(inputs_from), 'file': 'pipeline.safetensors',
                   'source_rgb256': digest(t['source_rgb256']), 'driving_rgb256': digest(t['driving_rgb256'])},
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
