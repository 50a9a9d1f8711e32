"""The safetensors writer the fixture generators share (tests/gen_*.py).

Written by hand with struct + json, so that the files do not depend on the
safetensors module; written to a temporary name and renamed, so that a failed
run leaves the committed fixture as it was.
"""
import json
import os
import struct


def write_safetensors(path, tensors, metadata=None, metadata_last=False):
    """tensors: list of (name, dtype string, shape, raw little-endian bytes),
    stored in that order; metadata (a dict of strings) goes into the header's
    __metadata__, before the tensors or, with metadata_last, after them"""
    header = {}
    if metadata and not metadata_last:
        header["__metadata__"] = metadata
    off = 0
    for name, dt, shape, data in tensors:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
    if metadata and metadata_last:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, _, _, data in tensors:
            f.write(data)
    os.replace(tmp, path)


def f32(t):
    """float32 values, held in float64 (the references are computed in float64
    from numbers the float32 engine sees exactly)"""
    return t.float().double()


def save_torch(path, named, written_by):
    """named: list of (name, torch tensor); floats stored as F32, ints as I64"""
    import torch
    tensors = []
    for name, t in named:
        t = t.detach().contiguous()
        if t.dtype in (torch.int64, torch.int32):
            dt, raw = "I64", t.to(torch.int64).numpy().astype("<i8").tobytes()
        else:
            dt, raw = "F32", t.to(torch.float32).numpy().astype("<f4").tobytes()
        tensors.append((name, dt, t.shape, raw))
    write_safetensors(path, tensors, {"written_by": written_by, "torch": torch.__version__},
                      metadata_last=True)
