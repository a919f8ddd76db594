#!/usr/bin/env python3
"""Dump golden tensors from the reference LivePortrait (PyTorch) for the TS port.

The reference code is imported at run time from a checkout of
KwaiVGI/LivePortrait given by --reference (nothing of it is copied here).
Networks are built from the checkout's src/config/models.yaml with its own
classes and its own checkpoint loader (src/utils/helper.load_model), in eval
mode, float32, on the CPU.

See tools/reference/README.md for usage and the file / tensor naming.
"""
import sys
sys.dont_write_bytecode = True  # leave no __pycache__ here or in the reference checkout
import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import subprocess
import time
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402

MODULES = ['appearance_feature_extractor', 'motion_extractor', 'warping_module', 'spade_generator',
           'stitching_retargeting_module', 'camera', 'ops', 'pipeline', 'pipeline_animal']
# not part of --modules all (ask for it by name)
NOT_IN_ALL = {'pipeline_animal'}
ALIASES = {'F': 'appearance_feature_extractor', 'M': 'motion_extractor', 'W': 'warping_module',
           'G': 'spade_generator', 'S': 'stitching_retargeting_module'}
NETS = MODULES[:5]
# stitching_retargeting_module: sub-network name in the reference wrapper -> checkpoint entry
S_PARTS = {'stitching': 'retarget_shoulder', 'lip': 'retarget_mouth', 'eye': 'retarget_eye'}

# The pipeline option sets of the shared fixtures.
PIPELINE_OPTIONS = {
    'relative_stitching': {'relative': True, 'stitching': True, 'region': 'all', 'multiplier': 1.0},
    'absolute_nostitch_mult': {'relative': False, 'stitching': False, 'region': 'all', 'multiplier': 1.25},
    'relative_lip_region': {'relative': True, 'stitching': True, 'region': 'lip', 'multiplier': 1.0},
    'retarget_eye_lip': {'relative': True, 'stitching': True, 'region': 'all', 'multiplier': 1.0,
                         'eye_ratio': [[0.3, 0.32, 0.05], [0.3, 0.32, 0.25], [0.3, 0.32, 0.45]],
                         'lip_ratio': [[0.1, 0.02], [0.1, 0.27], [0.1, 0.52]]},
}

# The animal pipeline's option sets (LivePortraitPipelineAnimal.execute has no relative/absolute,
# region or retargeting choices: only stitching and the driving multiplier).
ANIMAL_OPTIONS = {
    'animal_stitching': {'stitching': True, 'multiplier': 1.0},
    'animal_nostitch_mult': {'stitching': False, 'multiplier': 1.25},
}

torch = None  # imported in main() (after argument parsing, so --help works without torch)
F = None


def log(*a):
    print('[dump]', *a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Synthetic weights: the rule of shared/parity/README.md (and src/weights/synthetic.ts)
# --------------------------------------------------------------------------------------------

def fnv1a32(s):
    h = 0x811C9DC5
    for b in s.encode('utf-8'):
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def uniforms(name, seed, n):
    """float64 uniforms in [0, 1) of tensor `name` under `seed` (row-major index i)."""
    key = np.uint32(fnv1a32(f'{seed}:{name}'))
    with np.errstate(over='ignore'):
        x = np.arange(n, dtype=np.uint32) * np.uint32(0x9E3779B1) + key
        x ^= x >> np.uint32(16)
        x = x * np.uint32(0x85EBCA6B)
        x ^= x >> np.uint32(13)
        x = x * np.uint32(0xC2B2AE35)
        x ^= x >> np.uint32(16)
    return x.astype(np.float64) / 4294967296.0


def rule_range(key, shape):
    if key.endswith('running_mean'):
        return -0.1, 0.1
    if key.endswith('running_var'):
        return 0.5, 1.5
    if key.endswith('grn.gamma') or key.endswith('grn.beta'):
        return -0.3, 0.3
    if len(shape) >= 2:
        b = math.sqrt(3 / int(np.prod(shape[1:])))
        return -b, b
    if key.endswith('weight'):
        return 0.8, 1.2
    if key.endswith('bias'):
        return -0.1, 0.1
    raise ValueError(f'synthetic weights: no rule for {key} {shape}')


def synthetic_tensor(name, shape, lo, hi, seed):
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniforms(name, seed, n)
    return (lo + (hi - lo) * u).astype(np.float32).reshape(shape)


def spade_extra_vector(full_name, seed, n):
    """spadeGeneratorSyntheticExtras (src/models/spade_generator.ts): u' = 2u-1, normalised
    in float64 with a sequential sum, then rounded to float32."""
    u = uniforms(full_name, seed, n) * 2 - 1
    s = 0.0
    for v in u.tolist():  # sequential float64 sum, as the TS loop
        s += v * v
    norm = max(math.sqrt(s), 1e-12)
    return (u / norm).astype(np.float32)


def synthetic_state_dict(module, model, seed, explicit, manifest_entry):
    """module: manifest name ('spade_generator', 'stitching_retargeting_module/retarget_eye', ...).
    Fills every state-dict key of `model` (its own order) by the rule."""
    sd = {}
    for key, t in model.state_dict().items():
        shape = list(t.shape)
        if key.endswith('num_batches_tracked'):
            sd[key] = torch.zeros((), dtype=torch.long)
            continue
        full = f'{module}/{key}'
        if key.endswith('.weight_u') or key.endswith('.weight_v'):
            if explicit is not None:
                if full not in explicit:
                    raise KeyError(f'{full} not in the --explicit file')
                arr = explicit[full]
            else:
                arr = spade_extra_vector(full, seed, shape[0])
            sd[key] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32).reshape(shape))
            manifest_entry[key] = {'shape': shape, 'explicit': True}
            continue
        lo, hi = rule_range(key, shape)
        sd[key] = torch.from_numpy(synthetic_tensor(full, shape, lo, hi, seed))
        manifest_entry[key] = {'shape': shape, 'lo': lo, 'hi': hi}
    return sd


# --------------------------------------------------------------------------------------------
# Reference import
# --------------------------------------------------------------------------------------------

def import_reference(ref):
    ref = os.path.abspath(ref)
    if not os.path.isfile(os.path.join(ref, 'src', 'config', 'models.yaml')):
        sys.exit(f'--reference {ref}: no src/config/models.yaml (want a KwaiVGI/LivePortrait checkout)')
    sys.path.insert(0, ref)

    # Optional third-party modules imported at module level by files we need, but not used on
    # the code paths we run: stub them in memory when they are not installed.
    def stub(name, **attrs):
        try:
            __import__(name)
            return
        except ImportError:
            pass
        parts = name.split('.')
        for i in range(1, len(parts) + 1):
            n = '.'.join(parts[:i])
            if n not in sys.modules:
                m = types.ModuleType(n)
                m.__path__ = []
                sys.modules[n] = m
                if i > 1:
                    setattr(sys.modules['.'.join(parts[:i - 1])], parts[i - 1], m)
        for k, v in attrs.items():
            setattr(sys.modules[name], k, v)

    def unavailable(what):
        def f(*a, **k):
            raise RuntimeError(f'{what} is stubbed by dump.py (not installed)')
        return f

    stub('scipy.spatial', ConvexHull=unavailable('scipy.spatial.ConvexHull'))

    class _Console:
        def log(self, *a, **k):
            pass
    stub('rich.console', Console=_Console)
    stub('rich.progress', track=lambda it, **k: it)

    import yaml
    from src.utils import helper
    from src.utils import camera
    from src import live_portrait_wrapper as lpw
    cfg = yaml.load(open(os.path.join(ref, 'src', 'config', 'models.yaml')), Loader=yaml.SafeLoader)
    commit = None
    try:
        commit = subprocess.run(['git', '-C', ref, 'rev-parse', 'HEAD'], capture_output=True, text=True,
                                check=True).stdout.strip() or None
    except Exception:
        pass
    return types.SimpleNamespace(path=ref, helper=helper, camera=camera, wrapper_mod=lpw, cfg=cfg, commit=commit)


def load_net(R, module, ckpt_path=None, state=None):
    """Through the reference's load_model. With `state` (an in-memory checkpoint object), torch.load
    is replaced in memory for the duration of the call."""
    if state is None:
        return R.helper.load_model(ckpt_path, R.cfg, 'cpu', module)
    orig = torch.load
    torch.load = lambda *a, **k: state
    try:
        return R.helper.load_model('<synthetic>', R.cfg, 'cpu', module)
    finally:
        torch.load = orig


def build_networks(R, args, wanted):
    """Returns (nets dict, manifest dict)."""
    nets = {}
    if args.synthetic is not None:
        seed = args.synthetic
        explicit = None
        if args.explicit:
            explicit, _ = read_safetensors(args.explicit)
        manifest = {'seed': seed, 'modules': {}}
        mp = R.cfg['model_params']
        from src.modules.appearance_feature_extractor import AppearanceFeatureExtractor
        from src.modules.motion_extractor import MotionExtractor
        from src.modules.warping_network import WarpingNetwork
        from src.modules.spade_generator import SPADEDecoder
        from src.modules.stitching_retargeting_network import StitchingRetargetingNetwork
        classes = {'appearance_feature_extractor': AppearanceFeatureExtractor, 'motion_extractor': MotionExtractor,
                   'warping_module': WarpingNetwork, 'spade_generator': SPADEDecoder}
        for module in NETS:
            if module == 'stitching_retargeting_module':
                sp = mp['stitching_retargeting_module_params']
                ckpt = {}
                for part, entry in S_PARTS.items():
                    proto = StitchingRetargetingNetwork(**sp[part])
                    me = manifest['modules'].setdefault(f'{module}/{entry}', {})
                    sd = synthetic_state_dict(f'{module}/{entry}', proto, seed, None, me)
                    ckpt[entry] = {'module.' + k: v for k, v in sd.items()}  # the official DDP layout
                if module in wanted:
                    nets[module] = load_net(R, module, state=ckpt)
                continue
            proto = classes[module](**mp[f'{module}_params'])
            me = manifest['modules'].setdefault(module, {})
            sd = synthetic_state_dict(module, proto, seed, explicit if module == 'spade_generator' else None, me)
            del proto
            if module in wanted:
                nets[module] = load_net(R, module, state=sd)
        manifest['explicit_vectors'] = (os.path.abspath(args.explicit) if args.explicit
                                        else 'rule: spadeGeneratorSyntheticExtras (src/models/spade_generator.ts)')
        return nets, manifest

    # real weights
    root = os.path.abspath(args.weights)
    if args.set == 'animal':
        base = [os.path.join(root, 'liveportrait_animals', 'base_models_v1.1'),
                os.path.join(root, 'liveportrait_animals', 'base_models')]
        retarget = [os.path.join(root, 'liveportrait', 'retargeting_models'),
                    os.path.join(root, 'liveportrait_animals', 'retargeting_models')]
    else:
        base = [os.path.join(root, 'liveportrait', 'base_models')]
        retarget = [os.path.join(root, 'liveportrait', 'retargeting_models')]
    manifest = {'source': 'real', 'set': args.set, 'weights_dir': root, 'modules': {}}
    for module in NETS:
        if module not in wanted:
            continue
        dirs = (retarget if module == 'stitching_retargeting_module' else base) + [root]
        path = next((os.path.join(d, module + '.pth') for d in dirs if os.path.isfile(os.path.join(d, module + '.pth'))), None)
        if path is None:
            raise FileNotFoundError(f'{module}.pth not found under {root} (looked in {dirs})')
        h = hashlib.sha256()
        with open(path, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                h.update(chunk)
        net = load_net(R, module, ckpt_path=path)
        nets[module] = net
        entry = {'file': os.path.relpath(path, root), 'sha256': h.hexdigest(), 'bytes': os.path.getsize(path)}
        if module == 'stitching_retargeting_module':
            entry['keys'] = {S_PARTS[p]: {k: {'shape': list(v.shape)} for k, v in net[p].state_dict().items()
                                          if not k.endswith('num_batches_tracked')} for p in S_PARTS}
        else:
            entry['keys'] = {k: {'shape': list(v.shape)} for k, v in net.state_dict().items()
                             if not k.endswith('num_batches_tracked')}
        manifest['modules'][module] = entry
    return nets, manifest


def make_wrapper(R, nets):
    """A LivePortraitWrapper (the reference's class and methods) around our networks, float32 CPU."""
    from src.config.inference_config import InferenceConfig
    W = R.wrapper_mod.LivePortraitWrapper.__new__(R.wrapper_mod.LivePortraitWrapper)
    cfg = InferenceConfig()
    cfg.flag_use_half_precision = False
    cfg.flag_force_cpu = True
    cfg.flag_do_torch_compile = False
    W.inference_cfg = cfg
    W.device_id = 0
    W.device = 'cpu'
    W.compile = False
    # torch 1.13's CPU autocast rejects float16 even when disabled: float32 runs need no autocast
    import contextlib
    W.inference_ctx = contextlib.nullcontext
    W.appearance_feature_extractor = nets.get('appearance_feature_extractor')
    W.motion_extractor = nets.get('motion_extractor')
    W.warping_module = nets.get('warping_module')
    W.spade_generator = nets.get('spade_generator')
    W.stitching_retargeting_module = nets.get('stitching_retargeting_module')
    return W


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

def center_crop_256(img_rgb):
    import cv2
    h, w = img_rgb.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    sq = img_rgb[y0:y0 + s, x0:x0 + s]
    if s == 256:
        return np.ascontiguousarray(sq)
    return cv2.resize(sq, (256, 256), interpolation=cv2.INTER_AREA)


def load_image_u8(path):
    import cv2
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(path)
    return center_crop_256(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def load_video_u8(path, frames):
    import cv2
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise FileNotFoundError(path)
    want = sorted(set(frames))
    got = {}
    i = 0
    while i <= want[-1]:
        ok, bgr = cap.read()
        if not ok:
            raise ValueError(f'{path}: only {i} frames, wanted frame {want[-1]}')
        if i in want:
            got[i] = center_crop_256(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        i += 1
    cap.release()
    return np.stack([got[f] for f in frames])


def u8_to_nchw(u8):
    """[.., 256, 256, 3] uint8 -> float32 NCHW in [0, 1] (u8 / 255, as the reference's prepare_*)."""
    x = u8.astype(np.float32) / 255.0
    if x.ndim == 3:
        x = x[None]
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def random_inputs(seed, n_driving):
    """Synthetic tensors for inputs that media do not give (documented in README.md)."""
    g = torch.Generator().manual_seed(seed)
    r = {}
    r['source'] = torch.rand(1, 3, 256, 256, generator=g)
    r['driving'] = torch.rand(n_driving, 3, 256, 256, generator=g)
    r['W.kp_source'] = (torch.rand(1, 21, 3, generator=g) * 1.6 - 0.8)
    r['W.kp_driving'] = r['W.kp_source'] + torch.randn(1, 21, 3, generator=g) * 0.05
    r['S.kp_source'] = torch.randn(4, 21, 3, generator=g)
    r['S.kp_driving'] = torch.randn(4, 21, 3, generator=g)
    r['S.eye_ratio'] = torch.rand(4, 3, generator=g) * 0.5
    r['S.lip_ratio'] = torch.rand(4, 2, generator=g) * 0.5
    r['camera.bins'] = torch.randn(5, 66, generator=g) * 1.5
    r['camera.pyr_degrees'] = torch.rand(5, 3, generator=g) * 120 - 60
    r['ops.grid_sample_input'] = torch.randn(2, 3, 5, 6, 7, generator=g)
    r['ops.grid_sample_grid'] = torch.rand(2, 4, 5, 6, 3, generator=g) * 2.6 - 1.3
    return r


def gather_inputs(args):
    """Returns (inputs dict, description dict). Keys: source [1,3,256,256], driving [T,3,256,256],
    source_u8 / driving_u8 (when from media or a pipeline fixture), and per-module tensors."""
    inp, desc = {}, {}
    frames = [int(f) for f in args.frames.split(',')]
    rnd = random_inputs(args.random if args.random is not None else 0, len(frames))
    if args.inputs_from:
        d = os.path.abspath(args.inputs_from)
        desc['inputs_from'] = d

        def rd(name):
            p = os.path.join(d, name + '.safetensors')
            return read_safetensors(p)[0] if os.path.isfile(p) else None
        Ff, Mf, Wf, Sf, Cf, Of, Pf = (rd(n) for n in ('appearance_feature_extractor', 'motion_extractor', 'warping_module',
                                                       'stitching_retargeting_module', 'camera', 'ops', 'pipeline'))
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
        if Ff is not None:
            inp['source'] = t(Ff['input'])
            inp['F.output'] = t(Ff['output'])  # feature_3d for W
        if Mf is not None:
            inp['M.input'] = t(Mf['input'])
        if Wf is not None:
            inp['W.kp_source'], inp['W.kp_driving'] = t(Wf['kp_source']), t(Wf['kp_driving'])
            inp['W.out'] = t(Wf['out'])  # G's input
        if Sf is not None:
            for k in ('kp_source', 'kp_driving', 'eye_ratio', 'lip_ratio'):
                inp['S.' + k] = t(Sf[k])
        if Cf is not None:
            inp['camera.bins'], inp['camera.pyr_degrees'] = t(Cf['bins']), t(Cf['pyr_degrees'])
        if Of is not None:
            inp['ops.grid_sample_input'], inp['ops.grid_sample_grid'] = t(Of['grid_sample_input']), t(Of['grid_sample_grid'])
        if Pf is not None:
            inp['source_u8'], inp['driving_u8'] = Pf['source_rgb256'], Pf['driving_rgb256']
        if 'source' not in inp and 'source_u8' in inp:
            inp['source'] = u8_to_nchw(inp['source_u8'])
        if 'M.input' not in inp and 'source' in inp and 'driving_u8' in inp:
            inp['M.input'] = torch.cat([inp['source'], u8_to_nchw(inp['driving_u8'][:1])])
        for k, v in rnd.items():
            if k not in inp and k not in ('source', 'driving'):
                inp[k] = v
                desc.setdefault('random_fallback', []).append(k)
        return inp, desc

    if args.image or args.video:
        if not (args.image and args.video):
            sys.exit('--image and --video go together')
        inp['source_u8'] = load_image_u8(args.image)
        inp['driving_u8'] = load_video_u8(args.video, frames)
        inp['source'] = u8_to_nchw(inp['source_u8'])
        inp['driving'] = u8_to_nchw(inp['driving_u8'])
        desc['image'] = os.path.abspath(args.image)
        desc['video'] = os.path.abspath(args.video)
        desc['frames'] = frames
        desc['preprocess'] = 'RGB, centre square crop, cv2.resize 256x256 INTER_AREA, u8/255'
    else:
        inp['source'] = rnd['source']
        inp['driving'] = rnd['driving']
        desc['random_images'] = True
    inp['M.input'] = torch.cat([inp['source'], inp['driving'][:1]])
    for k, v in rnd.items():
        if k not in ('source', 'driving'):
            inp[k] = v
    desc['random_seed'] = args.random if args.random is not None else 0
    desc['kp_from_model'] = bool(args.image)  # W kps from x_s / x_d of the images (media mode)
    return inp, desc


# --------------------------------------------------------------------------------------------
# Taps
# --------------------------------------------------------------------------------------------

def _clone(o):
    if torch.is_tensor(o):
        return o.detach().clone()
    if isinstance(o, (list, tuple)):
        return type(o)(_clone(x) for x in o) if isinstance(o, tuple) else [_clone(x) for x in o]
    if isinstance(o, dict):
        return {k: _clone(v) for k, v in o.items()}
    return o


def _flatten(name, o, out):
    if torch.is_tensor(o):
        out[name] = o
    elif isinstance(o, (list, tuple)):
        for i, x in enumerate(o):
            _flatten(f'{name}/{i}', x, out)
    elif isinstance(o, dict):
        for k, x in o.items():
            _flatten(f'{name}/{k}', x, out)


def subsample(t, stride):
    if stride <= 1 or t.dim() < 3:
        return t
    idx = [slice(None), slice(None)] + [slice(None, None, stride)] * (t.dim() - 2)
    return t[tuple(idx)].contiguous()


class Taps:
    """Forward hooks by module path. `spec` is 'MODULE.PATH' where MODULE is a network name (or alias)
    and PATH a dotted sub-module path (get_submodule); for stitching_retargeting_module the first
    component is stitching|lip|eye."""

    def __init__(self, specs, stride):
        self.by_module = {}
        self.stride = stride
        for s in specs:
            head, _, path = s.partition('.')
            head = ALIASES.get(head, head)
            if head not in NETS:
                sys.exit(f'--tap {s}: unknown network {head!r} (one of {NETS})')
            self.by_module.setdefault(head, []).append(path)

    def run(self, module, net, fn):
        """Calls fn() with the hooks of `module` installed; returns (fn's result, {tensor name: tensor}, meta)."""
        paths = self.by_module.get(module, [])
        records, handles = {}, []
        for p in paths:
            if module == 'stitching_retargeting_module':
                part, _, sub = p.partition('.')
                if part not in net:
                    sys.exit(f'--tap {module}.{p}: first component must be one of {list(net)}')
                m = net[part].get_submodule(sub) if sub else net[part]
            else:
                m = net.get_submodule(p) if p else net
            records[p] = []
            handles.append(m.register_forward_hook(lambda mod, i, o, p=p: records[p].append(_clone(o))))
        try:
            res = fn()
        finally:
            for h in handles:
                h.remove()
        tensors, meta = {}, {}
        for p, calls in records.items():
            if not calls:
                log(f'warning: tap {module}.{p} was never called')
            for ci, o in enumerate(calls):
                base = f'tap/{p}' + (f'#{ci}' if len(calls) > 1 else '')
                flat = {}
                _flatten(base, o, flat)
                for n, t in flat.items():
                    tensors[n] = subsample(t, self.stride)
                    info = {'module': module, 'path': p, 'full_shape': list(t.shape)}
                    if self.stride > 1 and t.dim() >= 3:
                        info['slice'] = '[:, :' + f', ::{self.stride}' * (t.dim() - 2) + ']'
                    meta[n] = json.dumps(info)
        return res, tensors, meta


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------

def run_all(R, nets, inp, args, wanted, taps):
    """Returns {file stem: (ordered tensors, metadata)}."""
    Wr = make_wrapper(R, nets)
    cam = R.camera
    res = {}
    cache = {}
    fixture_taps = not args.no_fixture_taps
    emb = args.embed_inputs

    def need(module):
        if module not in nets:
            sys.exit(f'{module} is needed but its weights are not loaded')
        return nets[module]

    # F
    if 'appearance_feature_extractor' in wanted or ('warping_module' in wanted and 'F.output' not in inp):
        net = need('appearance_feature_extractor')
        x = inp['source']
        with torch.no_grad():
            out, tt, tm = taps.run('appearance_feature_extractor', net, lambda: net(x))
        cache['feature_3d'] = out
        res['appearance_feature_extractor'] = ({'input': x, 'output': out, **tt}, {'input': 'source image, NCHW float32 u8/255', **tm})
    # M
    if 'motion_extractor' in wanted or 'camera' in wanted or ('warping_module' in wanted and 'W.kp_source' not in inp):
        net = need('motion_extractor')
        x = inp['M.input']
        with torch.no_grad():
            out, tt, tm = taps.run('motion_extractor', net, lambda: net(x))
        cache['M'] = out
        d = {'input': x}
        for k in ('pitch', 'yaw', 'roll', 't', 'exp', 'scale', 'kp'):
            d[k] = out[k]
        d.update(tt)
        res['motion_extractor'] = (d, {'input': 'batch [source, driving frame 0]', **tm})
    # camera
    if 'camera' in wanted:
        bins, pyr = inp['camera.bins'], inp['camera.pyr_degrees']
        d = {'bins': bins, 'degree': cam.headpose_pred_to_degree(bins), 'pyr_degrees': pyr,
             'rotation': cam.get_rotation_matrix(pyr[:, 0], pyr[:, 1], pyr[:, 2])}
        info = Wr.get_kp_info(inp['M.input'][:1])  # the reference's refine (degrees, reshape)
        for k in ('kp', 'pitch', 'yaw', 'roll', 't', 'exp', 'scale'):
            d['x_s_info_' + k] = info[k]
        d['x_s'] = Wr.transform_keypoint(info)
        res['camera'] = (d, {'x_s_info': 'get_kp_info(motion_extractor input[0:1]) refined; x_s = transform_keypoint'})
    # W
    if 'warping_module' in wanted or ('spade_generator' in wanted and 'W.out' not in inp):
        net = need('warping_module')
        f3d = inp['F.output'] if 'F.output' in inp else cache['feature_3d']
        if 'W.kp_source' in inp and not args.kp_from_model:
            kps, kpd = inp['W.kp_source'], inp['W.kp_driving']
            kpsrc = 'inputs'
        else:
            if 'M' not in cache:
                sys.exit('W keypoints: need the motion extractor')
            info = Wr.get_kp_info(inp['M.input'])
            xk = Wr.transform_keypoint(info)
            kps, kpd = xk[:1].clone(), xk[1:2].clone()
            kpsrc = 'x_s, x_d = transform_keypoint(get_kp_info(motion_extractor input)) rows 0, 1'
        dm = net.dense_motion_network
        ext = {}
        hs = []
        if fixture_taps:
            # the shared fixture's compress_out is the 1x1 Conv3d output, before norm and relu
            hs.append(dm.compress.register_forward_hook(lambda m, i, o: ext.__setitem__('compress_out', o.clone())))
            hs.append(dm.hourglass.register_forward_hook(lambda m, i, o: ext.__setitem__('hourglass_out_sub', o[:, :, ::4, ::4, ::4].clone())))
        try:
            with torch.no_grad():
                out, tt, tm = taps.run('warping_module', net, lambda: net(f3d, kp_driving=kpd, kp_source=kps))
        finally:
            for h in hs:
                h.remove()
        cache['W.out'] = out['out']
        d = {'kp_source': kps, 'kp_driving': kpd, 'out': out['out'], 'occlusion_map': out['occlusion_map'],
             'deformation': out['deformation']}
        d.update(ext)
        if emb:
            d['feature_3d'] = f3d
        d.update(tt)
        meta = {'feature_3d': 'output of appearance_feature_extractor.safetensors', 'keypoints': kpsrc}
        if fixture_taps:
            meta['hourglass_out_sub'] = 'hourglass output [:, :, ::4, ::4, ::4]'
            meta['compress_out'] = 'dense_motion_network.compress(feature_3d): the 1x1 Conv3d output, before norm and relu'
        meta.update(tm)
        res['warping_module'] = (d, meta)
    # G
    if 'spade_generator' in wanted:
        net = need('spade_generator')
        x = inp['W.out'] if 'W.out' in inp else cache['W.out']
        ext, hs = {}, []
        if fixture_taps:
            hs.append(net.fc.register_forward_hook(lambda m, i, o: ext.__setitem__('fc_out_sub', o[:, :, ::2, ::2].clone())))
            hs.append(net.G_middle_0.register_forward_hook(lambda m, i, o: ext.__setitem__('G_middle_0_out_sub', o[:, :, ::2, ::2].clone())))
        try:
            with torch.no_grad():
                out, tt, tm = taps.run('spade_generator', net, lambda: net(feature=x))
        finally:
            for h in hs:
                h.remove()
        d = {'output': out}
        d.update(ext)
        if emb:
            d['input'] = x
        d.update(tt)
        meta = {'input': 'out of warping_module.safetensors'}
        if fixture_taps:
            meta.update({'fc_out_sub': '[:, :, ::2, ::2]', 'G_middle_0_out_sub': '[:, :, ::2, ::2]'})
        meta.update(tm)
        res['spade_generator'] = (d, meta)
    # S
    if 'stitching_retargeting_module' in wanted:
        net = need('stitching_retargeting_module')
        kps, kpd = inp['S.kp_source'], inp['S.kp_driving']
        er, lr = inp['S.eye_ratio'], inp['S.lip_ratio']

        def go():
            return (Wr.stitch(kps, kpd), Wr.stitching(kps, kpd), Wr.retarget_eye(kps, er), Wr.retarget_lip(kps, lr))
        (sd_, skd, ed, ld), tt, tm = taps.run('stitching_retargeting_module', net, go)
        d = {'kp_source': kps, 'kp_driving': kpd, 'eye_ratio': er, 'lip_ratio': lr, 'stitch_delta': sd_,
             'stitched_kp_driving': skd, 'eye_delta': ed, 'lip_delta': ld, **tt}
        res['stitching_retargeting_module'] = (d, dict(tm))
    # ops
    if 'ops' in wanted:
        gi, gg = inp['ops.grid_sample_input'], inp['ops.grid_sample_grid']
        go_ = F.grid_sample(gi, gg, mode='bilinear', padding_mode='zeros', align_corners=False)
        res['ops'] = ({'grid_sample_input': gi, 'grid_sample_grid': gg, 'grid_sample_output': go_},
                      {'grid_sample_output': "F.grid_sample(input, grid, mode='bilinear' (trilinear on 5-D), padding_mode='zeros', align_corners=False)"})
    # pipeline
    if 'pipeline' in wanted:
        res['pipeline'] = run_pipeline(R, Wr, inp, args)
    if 'pipeline_animal' in wanted:
        res['pipeline_animal'] = run_pipeline_animal(R, nets, inp, args)
    return res


def run_pipeline(R, Wr, inp, args):
    """The image-source / driving-video branch of LivePortraitPipeline.execute (no crop, no
    paste-back, no landmark-based lip normalisation), float32 CPU, for each option set."""
    get_rotation_matrix = R.camera.get_rotation_matrix
    if 'source_u8' not in inp or 'driving_u8' not in inp:
        sys.exit('pipeline: needs --image/--video or an --inputs-from dir with pipeline.safetensors')
    src_u8, drv_u8 = inp['source_u8'], inp['driving_u8']
    tensors = {'source_rgb256': src_u8, 'driving_rgb256': drv_u8}
    meta = {}
    dev = 'cpu'
    I_s = Wr.prepare_source(src_u8)
    I_d_lst = Wr.prepare_videos(list(drv_u8))
    n_frames = I_d_lst.shape[0]
    # make_motion_template (pipeline method; c_eyes/c_lip are not used here)
    motion = []
    for i in range(n_frames):
        x_i_info = Wr.get_kp_info(I_d_lst[i])
        x_i_s = Wr.transform_keypoint(x_i_info)
        R_i = get_rotation_matrix(x_i_info['pitch'], x_i_info['yaw'], x_i_info['roll'])
        motion.append({'scale': x_i_info['scale'].cpu().numpy().astype(np.float32),
                       'R': R_i.cpu().numpy().astype(np.float32),
                       'exp': x_i_info['exp'].cpu().numpy().astype(np.float32),
                       't': x_i_info['t'].cpu().numpy().astype(np.float32),
                       'kp': x_i_info['kp'].cpu().numpy().astype(np.float32),
                       'x_s': x_i_s.cpu().numpy().astype(np.float32)})
    opts = args.pipeline_options
    for name, o in opts.items():
        log(f'pipeline option set {name}')
        cfg = Wr.inference_cfg
        cfg.flag_relative_motion = o['relative']
        cfg.flag_stitching = o['stitching']
        cfg.animation_region = o['region']
        cfg.driving_multiplier = o['multiplier']
        cfg.flag_eye_retargeting = 'eye_ratio' in o
        cfg.flag_lip_retargeting = 'lip_ratio' in o
        cfg.driving_option = 'pose-friendly'
        x_s_info = Wr.get_kp_info(I_s)
        x_c_s = x_s_info['kp']
        R_s = get_rotation_matrix(x_s_info['pitch'], x_s_info['yaw'], x_s_info['roll'])
        f_s = Wr.extract_feature_3d(I_s)
        x_s = Wr.transform_keypoint(x_s_info)
        R_d_0, x_d_0_info = None, None
        xs_out, frames = [], []
        for i in range(n_frames):
            x_d_i_info = R.helper.dct2device(dict(motion[i]), dev)
            R_d_i = x_d_i_info['R']
            if i == 0:
                R_d_0 = R_d_i
                x_d_0_info = x_d_i_info.copy()
            delta_new = x_s_info['exp'].clone()
            region = cfg.animation_region
            if cfg.flag_relative_motion:
                R_new = (R_d_i @ R_d_0.permute(0, 2, 1)) @ R_s if region in ('all', 'pose') else R_s
                if region in ('all', 'exp'):
                    delta_new = x_s_info['exp'] + (x_d_i_info['exp'] - x_d_0_info['exp'])
                elif region == 'lip':
                    for lip_idx in [6, 12, 14, 17, 19, 20]:
                        delta_new[:, lip_idx, :] = (x_s_info['exp'] + (x_d_i_info['exp'] - x_d_0_info['exp']))[:, lip_idx, :]
                elif region == 'eyes':
                    for eyes_idx in [11, 13, 15, 16, 18]:
                        delta_new[:, eyes_idx, :] = (x_s_info['exp'] + (x_d_i_info['exp'] - x_d_0_info['exp']))[:, eyes_idx, :]
                scale_new = x_s_info['scale'] * (x_d_i_info['scale'] / x_d_0_info['scale']) if region == 'all' else x_s_info['scale']
                t_new = x_s_info['t'] + (x_d_i_info['t'] - x_d_0_info['t']) if region in ('all', 'pose') else x_s_info['t']
            else:
                R_new = R_d_i if region in ('all', 'pose') else R_s
                if region in ('all', 'exp'):
                    for idx in [1, 2, 6, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]:
                        delta_new[:, idx, :] = x_d_i_info['exp'][:, idx, :]
                    delta_new[:, 3:5, 1] = x_d_i_info['exp'][:, 3:5, 1]
                    delta_new[:, 5, 2] = x_d_i_info['exp'][:, 5, 2]
                    delta_new[:, 8, 2] = x_d_i_info['exp'][:, 8, 2]
                    delta_new[:, 9, 1:] = x_d_i_info['exp'][:, 9, 1:]
                elif region == 'lip':
                    for lip_idx in [6, 12, 14, 17, 19, 20]:
                        delta_new[:, lip_idx, :] = x_d_i_info['exp'][:, lip_idx, :]
                elif region == 'eyes':
                    for eyes_idx in [11, 13, 15, 16, 18]:
                        delta_new[:, eyes_idx, :] = x_d_i_info['exp'][:, eyes_idx, :]
                scale_new = x_s_info['scale']
                t_new = x_d_i_info['t'] if region in ('all', 'pose') else x_s_info['t']
            t_new[..., 2].fill_(0)
            x_d_i_new = scale_new * (x_c_s @ R_new + delta_new) + t_new
            if not cfg.flag_stitching and not cfg.flag_eye_retargeting and not cfg.flag_lip_retargeting:
                pass  # no lip normalisation (needs landmarks)
            elif cfg.flag_stitching and not cfg.flag_eye_retargeting and not cfg.flag_lip_retargeting:
                x_d_i_new = Wr.stitching(x_s, x_d_i_new)
            else:
                eyes_delta, lip_delta = None, None
                if cfg.flag_eye_retargeting:
                    eyes_delta = Wr.retarget_eye(x_s, torch.tensor([o['eye_ratio'][i]], dtype=torch.float32))
                if cfg.flag_lip_retargeting:
                    lip_delta = Wr.retarget_lip(x_s, torch.tensor([o['lip_ratio'][i]], dtype=torch.float32))
                if cfg.flag_relative_motion:
                    x_d_i_new = x_s + (eyes_delta if eyes_delta is not None else 0) + (lip_delta if lip_delta is not None else 0)
                else:
                    x_d_i_new = x_d_i_new + (eyes_delta if eyes_delta is not None else 0) + (lip_delta if lip_delta is not None else 0)
                if cfg.flag_stitching:
                    x_d_i_new = Wr.stitching(x_s, x_d_i_new)
            x_d_i_new = x_s + (x_d_i_new - x_s) * cfg.driving_multiplier
            out = Wr.warp_decode(f_s, x_s, x_d_i_new)
            frames.append(Wr.parse_output(out['out'])[0])
            xs_out.append(x_d_i_new[0])
        tensors[f'{name}/x_d'] = torch.stack(xs_out)
        tensors[f'{name}/frames'] = np.stack(frames)
        meta[name] = json.dumps(o)
    return tensors, meta


def run_pipeline_animal(R, nets, inp, args):
    """LivePortraitPipelineAnimal.execute for an image source already cropped (the fixed 256x256
    crop of the inputs, the reference's `img_crop_256x256`) and a driving video, with the reference's
    LivePortraitWrapperAnimal (its class, methods and inherited methods around our networks) and the
    pipeline's own make_motion_template and calc_motion_multiplier; float32 CPU; no paste-back."""
    import contextlib
    import cv2
    if 'source_u8' not in inp or 'driving_u8' not in inp:
        sys.exit('pipeline_animal: needs --image/--video or an --inputs-from dir with pipeline.safetensors')
    # The pipeline module imports the cropper (face and animal landmark runners: onnxruntime, XPose),
    # which this branch never calls: stub that one import in memory when it cannot be imported.
    try:
        import src.utils.cropper  # noqa: F401
    except Exception:
        m = types.ModuleType('src.utils.cropper')
        m.Cropper = None
        sys.modules['src.utils.cropper'] = m
    # Third-party modules imported at module level but not called on this branch (tyro for the
    # argument dataclass, imageio for video files): permissive stubs in memory when missing.
    class _Any:
        def __getattr__(self, k):
            return _Any()

        def __call__(self, *a, **k):
            return _Any()

    class _AnyModule(types.ModuleType):
        def __getattr__(self, k):
            if k.startswith('__'):
                raise AttributeError(k)
            return _Any()
    for _ in range(10):
        try:
            from src.live_portrait_pipeline_animal import LivePortraitPipelineAnimal
            break
        except ModuleNotFoundError as e:
            if not e.name or e.name.split('.')[0] == 'src' or e.name in sys.modules:
                raise
            log(f'pipeline_animal: stubbing {e.name} (not installed; unused on this branch)')
            sys.modules[e.name] = _AnyModule(e.name)
    from src.config.inference_config import InferenceConfig
    get_rotation_matrix = R.camera.get_rotation_matrix
    Wa = R.wrapper_mod.LivePortraitWrapperAnimal.__new__(R.wrapper_mod.LivePortraitWrapperAnimal)
    cfg = InferenceConfig()
    cfg.flag_use_half_precision = False
    cfg.flag_force_cpu = True
    cfg.flag_do_torch_compile = False
    Wa.inference_cfg = cfg
    Wa.device_id = 0
    Wa.device = 'cpu'
    Wa.compile = False
    Wa.inference_ctx = contextlib.nullcontext
    Wa.appearance_feature_extractor = nets['appearance_feature_extractor']
    Wa.motion_extractor = nets['motion_extractor']
    Wa.warping_module = nets['warping_module']
    Wa.spade_generator = nets['spade_generator']
    Wa.stitching_retargeting_module = nets['stitching_retargeting_module']
    P = LivePortraitPipelineAnimal.__new__(LivePortraitPipelineAnimal)
    P.live_portrait_wrapper_animal = Wa

    src_u8, drv_u8 = inp['source_u8'], inp['driving_u8']
    tensors = {'source_rgb256': src_u8, 'driving_rgb256': drv_u8}
    meta = {'source': 'the fixed 256x256 crop (img_crop_256x256)',
            'driving': 'frames resized to 256x256 with cv2.resize (identity here), no driving crop'}
    # execute(): driving video branch, flag_crop_driving_video False
    driving_rgb_crop_256x256_lst = [cv2.resize(np.ascontiguousarray(f), (256, 256)) for f in drv_u8]
    I_d_lst = Wa.prepare_videos(driving_rgb_crop_256x256_lst)
    template = P.make_motion_template(I_d_lst, output_fps=25)
    n_frames = template['n_frames']
    # execute(): source, flag_do_crop with the crop given
    img_crop_256x256 = np.ascontiguousarray(src_u8)
    I_s = Wa.prepare_source(img_crop_256x256)
    x_s_info = Wa.get_kp_info(I_s)
    x_c_s = x_s_info['kp']
    f_s = Wa.extract_feature_3d(I_s)
    x_s = Wa.transform_keypoint(x_s_info)
    tensors['x_s'] = x_s[0]
    for name, o in args.animal_options.items():
        log(f'pipeline_animal option set {name}')
        cfg.flag_stitching = o['stitching']
        cfg.driving_multiplier = o['multiplier']
        xs_out, frames = [], []
        for i in range(n_frames):
            x_d_i_info = R.helper.dct2device(dict(template['motion'][i]), 'cpu')
            R_d_i = x_d_i_info['R'] if 'R' in x_d_i_info.keys() else x_d_i_info['R_d']
            delta_new = x_d_i_info['exp']
            t_new = x_d_i_info['t']
            t_new[..., 2].fill_(0)
            scale_new = x_s_info['scale']
            x_d_i = scale_new * (x_c_s @ R_d_i + delta_new) + t_new
            if i == 0:
                x_d_0 = x_d_i
                motion_multiplier = R.helper.calc_motion_multiplier(x_s, x_d_0)
            x_d_diff = (x_d_i - x_d_0) * motion_multiplier
            x_d_i = x_d_diff + x_s
            if cfg.flag_stitching:
                x_d_i = Wa.stitching(x_s, x_d_i)
            x_d_i = x_s + (x_d_i - x_s) * cfg.driving_multiplier
            out = Wa.warp_decode(f_s, x_s, x_d_i)
            frames.append(Wa.parse_output(out['out'])[0])
            xs_out.append(x_d_i[0])
        tensors[f'{name}/x_d'] = torch.stack(xs_out)
        tensors[f'{name}/frames'] = np.stack(frames)
        tensors[f'{name}/motion_multiplier'] = torch.tensor([float(motion_multiplier)], dtype=torch.float32)
        meta[name] = json.dumps(o)
    return tensors, meta


# --------------------------------------------------------------------------------------------

def main():
    global torch, F
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--reference', required=True, help='checkout of KwaiVGI/LivePortrait (its src/ is imported)')
    ap.add_argument('--reference-commit', help='commit of the checkout, recorded in the metadata (default: git rev-parse)')
    w = ap.add_mutually_exclusive_group(required=True)
    w.add_argument('--weights', help='dir with the official layout (liveportrait/base_models/*.pth, '
                   'liveportrait/retargeting_models/stitching_retargeting_module.pth) or flat <module>.pth')
    w.add_argument('--synthetic', type=int, metavar='SEED', help='deterministic weights by the parity rule')
    ap.add_argument('--set', choices=['human', 'animal'], default='human', help='with --weights: which base models')
    ap.add_argument('--explicit', help='with --synthetic: safetensors with spade_generator/*.weight_u|v '
                    '(default: the TS rule spadeGeneratorSyntheticExtras)')
    ap.add_argument('--inputs-from', help='dir of fixture files: take every input tensor from them')
    ap.add_argument('--image', help='source image (centre square crop, INTER_AREA to 256)')
    ap.add_argument('--video', help='driving video (same preprocessing)')
    ap.add_argument('--frames', default='0,12,24', help='driving frame indices (default 0,12,24)')
    ap.add_argument('--random', type=int, metavar='SEED', help='torch.Generator seed for random inputs '
                    '(images too unless --image/--video; other tensors always; default 0)')
    ap.add_argument('--kp-from-model', action='store_true', help="W's keypoints from M on source/driving 0 even with --inputs-from")
    ap.add_argument('--modules', default='F,M,W,G,S,camera,ops',
                    help='comma list of ' + ','.join(MODULES) + ' (aliases F,M,W,G,S; "all" adds pipeline)')
    ap.add_argument('--tap', action='append', default=[], metavar='MODULE.PATH',
                    help='forward hook on a sub-module, e.g. spade_generator.G_middle_0 (repeatable)')
    ap.add_argument('--tap-stride', type=int, default=1, help='keep every n-th element of each spatial dim of taps')
    ap.add_argument('--no-fixture-taps', action='store_true',
                    help='omit compress_out, hourglass_out_sub, fc_out_sub, G_middle_0_out_sub')
    ap.add_argument('--embed-inputs', action='store_true', help="also store W's feature_3d and G's input in their files")
    ap.add_argument('--pipeline-options', help='JSON {name: {relative, stitching, region, multiplier, [eye_ratio, lip_ratio]}} '
                    '(default: the four sets of the shared fixtures)')
    ap.add_argument('--animal-options', help='JSON {name: {stitching, multiplier}} for pipeline_animal '
                    '(default: animal_stitching, animal_nostitch_mult)')
    ap.add_argument('--threads', type=int, default=1, help='torch threads (default 1)')
    ap.add_argument('--out', required=True)
    ap.add_argument('--overwrite', action='store_true')
    args = ap.parse_args()

    import torch as _torch
    import torch.nn.functional as _F
    torch, F = _torch, _F
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    torch.set_default_dtype(torch.float32)
    t0 = time.time()

    wanted = []
    for m in args.modules.split(','):
        m = m.strip()
        if m == 'all':
            wanted += [x for x in MODULES if x not in NOT_IN_ALL]
            continue
        m = ALIASES.get(m, m)
        if m not in MODULES:
            sys.exit(f'--modules: unknown {m!r}')
        wanted.append(m)
    wanted = [m for m in MODULES if m in wanted]
    args.pipeline_options = json.loads(args.pipeline_options) if args.pipeline_options else PIPELINE_OPTIONS
    args.animal_options = json.loads(args.animal_options) if args.animal_options else ANIMAL_OPTIONS

    os.makedirs(args.out, exist_ok=True)
    # which networks must be loaded
    need = set(m for m in wanted if m in NETS)
    if 'camera' in wanted:
        need.add('motion_extractor')
    if 'pipeline' in wanted or 'pipeline_animal' in wanted:
        need |= set(NETS)
    taps = Taps(args.tap, args.tap_stride)
    for m in taps.by_module:
        if m not in wanted:
            sys.exit(f'--tap on {m}, which is not in --modules')

    R = import_reference(args.reference)
    commit = args.reference_commit or R.commit
    inp, in_desc = gather_inputs(args)
    if 'warping_module' in wanted and 'F.output' not in inp:
        need.add('appearance_feature_extractor')
    if 'warping_module' in wanted and ('W.kp_source' not in inp or args.kp_from_model):
        need.add('motion_extractor')
    if 'spade_generator' in wanted and 'W.out' not in inp:
        need |= {'warping_module'}
        if 'F.output' not in inp:
            need.add('appearance_feature_extractor')
        if 'W.kp_source' not in inp:
            need.add('motion_extractor')

    planned = [os.path.join(args.out, m + '.safetensors') for m in wanted] + [os.path.join(args.out, 'weights_manifest.json')]
    if args.synthetic is not None:
        planned.append(os.path.join(args.out, 'explicit_weights.safetensors'))
    if not args.overwrite:
        clash = [p for p in planned if os.path.exists(p)]
        if clash:
            sys.exit('refusing to overwrite (pass --overwrite): ' + ', '.join(clash))

    log(f'building {sorted(need)} ({"synthetic seed %d" % args.synthetic if args.synthetic is not None else "weights " + args.weights})')
    nets, manifest = build_networks(R, args, need)
    for n in nets.values():
        for m in (n.values() if isinstance(n, dict) else [n]):
            m.eval()
            m.float()
    log(f'networks ready in {time.time() - t0:.1f}s')

    results = run_all(R, nets, inp, args, wanted, taps)

    common = {
        'generator': 'tools/reference/dump.py',
        'command': ' '.join(sys.argv),
        'torch_version': torch.__version__,
        'numpy_version': np.__version__,
        'python': platform.python_version(),
        'torch_threads': str(torch.get_num_threads()),
        'reference_commit': commit or 'unknown',
        'weights': (f'synthetic seed {args.synthetic}, spectral vectors: {manifest["explicit_vectors"]}'
                    if args.synthetic is not None else f'{args.weights} ({args.set})'),
        'inputs': json.dumps(in_desc),
        'created': datetime.datetime.utcnow().isoformat(timespec='seconds') + 'Z',
        'layout': 'PyTorch (NCHW / NCDHW); tap/<path>[/<i>] = forward-hook outputs',
    }
    for stem in wanted:
        tensors, meta = results[stem]
        md = dict(meta)
        md['dump'] = json.dumps({**common, 'module': stem})
        p = os.path.join(args.out, stem + '.safetensors')
        write_safetensors(p, tensors, md, overwrite=args.overwrite)
        log(f'wrote {p}: ' + ', '.join(f'{k}{list(v.shape)}' for k, v in tensors.items()))
    # manifest and explicit vectors
    with open(os.path.join(args.out, 'weights_manifest.json') + '.part', 'w') as f:
        json.dump(manifest, f, indent=0)
    os.replace(os.path.join(args.out, 'weights_manifest.json') + '.part', os.path.join(args.out, 'weights_manifest.json'))
    if args.synthetic is not None:
        sg = manifest['modules']['spade_generator']
        if 'spade_generator' in nets:
            sd = nets['spade_generator'].state_dict()
            ex = {f'spade_generator/{k}': sd[k] for k, v in sg.items() if v.get('explicit')}
        else:
            exf = read_safetensors(args.explicit)[0] if args.explicit else None
            ex = {f'spade_generator/{k}': (exf[f'spade_generator/{k}'] if exf else
                                           spade_extra_vector(f'spade_generator/{k}', args.synthetic, v['shape'][0]))
                  for k, v in sg.items() if v.get('explicit')}
        write_safetensors(os.path.join(args.out, 'explicit_weights.safetensors'), ex,
                          {'dump': json.dumps({**common, 'module': 'explicit_weights'})}, overwrite=args.overwrite)
    log(f'done in {time.time() - t0:.1f}s')


if __name__ == '__main__':
    main()
