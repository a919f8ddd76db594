"""Minimal safetensors reader/writer (no dependency on the `safetensors` package).

Format: 8-byte little-endian header length N, then N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
then the raw little-endian data (offsets relative to the end of the header).
"""
import json
import os
import struct

import numpy as np

_DTYPES = {
    'F64': np.float64, 'F32': np.float32, 'F16': np.float16,
    'I64': np.int64, 'I32': np.int32, 'I16': np.int16, 'I8': np.int8,
    'U8': np.uint8, 'U16': np.uint16, 'U32': np.uint32, 'U64': np.uint64, 'BOOL': np.bool_,
}
_NAMES = {np.dtype(v).newbyteorder('<'): k for k, v in _DTYPES.items()}


def read_safetensors(path):
    """Returns (ordered dict name -> numpy array, metadata dict or {})."""
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n].decode('utf-8'))
    meta = header.pop('__metadata__', None) or {}
    base = 8 + n
    out = {}
    # keep the header's order (json preserves it)
    for name, info in header.items():
        dt = np.dtype(_DTYPES[info['dtype']]).newbyteorder('<')
        b, e = info['data_offsets']
        arr = np.frombuffer(raw, dtype=dt, count=(e - b) // dt.itemsize, offset=base + b)
        out[name] = arr.reshape(info['shape']).astype(dt.newbyteorder('='), copy=True)
    return out, meta


def write_safetensors(path, tensors, metadata=None, overwrite=False):
    """tensors: ordered mapping name -> numpy array (or torch tensor). metadata: str -> str."""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists (pass --overwrite to replace it)')
    header = {}
    blobs = []
    offset = 0
    for name, arr in tensors.items():
        if hasattr(arr, 'detach'):
            arr = arr.detach().cpu().contiguous().numpy()
        arr = np.ascontiguousarray(arr)
        dt = arr.dtype.newbyteorder('<')
        if dt not in _NAMES:
            raise TypeError(f'{name}: unsupported dtype {arr.dtype}')
        data = arr.astype(dt, copy=False).tobytes()
        header[name] = {'dtype': _NAMES[dt], 'shape': list(arr.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header['__metadata__'] = {str(k): (v if isinstance(v, str) else json.dumps(v)) for k, v in metadata.items()}
    hjson = json.dumps(header, separators=(',', ':')).encode('utf-8')
    hjson += b' ' * ((8 - len(hjson) % 8) % 8)  # align data to 8 bytes
    tmp = path + '.part'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
