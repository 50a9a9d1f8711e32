#!/usr/bin/python3
"""bench/torch_models.py -- the PyTorch side of `make bench-models`: one
measurement in one process, the same models, steps and output lines as
bench/models.lua (read its header for the protocol).

    /usr/bin/python3 bench/torch_models.py --model resnet18 --step train --threads 2

The models copy recipes/arch/*.lua layer for layer, with the same module
names, so both sides print the same layout signature (the `arch` line):
bench/run_models.lua refuses to compare two models whose signatures differ.
"""
import argparse
import os
import sys

MODELS = ("lenet", "vgg16", "resnet18", "mobilenetv2")
STEPS = ("train", "md_last", "md_first", "fwd")

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--model", default="lenet", choices=MODELS)
ap.add_argument("--step", default="train", choices=STEPS)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--steps", type=int, default=10, help="timed steps")
ap.add_argument("--warmup", type=int, default=3)
ap.add_argument("--batch", type=int, default=None, help="default 64 for lenet, 32 otherwise")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--arch", action="store_true", help="print the arch line only")
ap.add_argument("--dump-arch", action="store_true", help="print the layout the signature is taken of")
ap.add_argument("--check", action="store_true", help="print the Model Doctor loss terms once")
ap.add_argument("--verify", metavar="FILE", help="load `models.lua --export FILE` and compare the logits")
args = ap.parse_args()
if args.threads < 1 or args.steps < 1:
    ap.error("--threads and --steps must be >= 1")

# the thread counts must be set before torch (OpenMP, its BLAS) starts
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import time  # noqa: E402
from collections import OrderedDict  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)


# ----------------------------------------------------------------------------- models
def lenet(cin=1, k=10, size=28):
    """recipes/arch/lenet.lua"""
    s = ((size - 4) // 2 - 4) // 2
    return nn.Sequential(OrderedDict([
        ("features", nn.Sequential(nn.Conv2d(cin, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
                                   nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))),
        ("flatten", nn.Flatten()),
        ("classifier", nn.Sequential(nn.Linear(16 * s * s, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                     nn.Linear(84, k))),
    ]))


VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg16(cin=3, k=10, size=32):
    """recipes/arch/vgg.lua: a pool is skipped when the map would go below 2x2
    (32x32 ends at 2x2), then an adaptive average pool and one linear layer"""
    layers, c, s = [], cin, size
    for v in VGG16:
        if v == "M":
            if s >= 4:
                layers.append(nn.MaxPool2d(2))
                s //= 2
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
            c = v
    return nn.Sequential(OrderedDict([
        ("features", nn.Sequential(*layers)),
        ("avgpool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        ("classifier", nn.Linear(c, k)),
    ]))


class BasicBlock(nn.Module):
    """recipes/arch/resnet.lua's BasicBlock"""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + short)


def resnet18(cin=3, k=10, blocks=(2, 2, 2, 2)):
    """recipes/arch/resnet.lua: CIFAR stem (3x3 stride 1, no max pool)"""
    stages = [("conv1", nn.Conv2d(cin, 64, 3, padding=1, bias=False)), ("bn1", nn.BatchNorm2d(64)),
              ("relu", nn.ReLU())]
    c = 64
    for i, n in enumerate(blocks):
        cout = 64 * 2 ** i
        lst = []
        for j in range(n):
            lst.append(BasicBlock(c, cout, 2 if (j == 0 and i > 0) else 1))
            c = cout
        stages.append((f"layer{i + 1}", nn.Sequential(*lst)))
    stages += [("avgpool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(c, k))]
    return nn.Sequential(OrderedDict(stages))


def cbr(cin, cout, k, stride, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6())


class InvertedResidual(nn.Module):
    """recipes/arch/mobilenetv2.lua's InvertedResidual"""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers = []
        if expand != 1:
            layers.append(cbr(cin, hidden, 1, 1))
        layers.append(cbr(hidden, hidden, 3, stride, hidden))  # depthwise
        layers.append(nn.Conv2d(hidden, cout, 1, bias=False))
        layers.append(nn.BatchNorm2d(cout))
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        y = self.conv(x)
        return x + y if self.use_res else y


MBV2 = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def mobilenetv2(cin=3, k=10):
    """recipes/arch/mobilenetv2.lua: stride-1 stem, second stage stride 1, 1280x4x4 at the end"""
    feats = [cbr(cin, 32, 3, 1)]
    c = 32
    for t, cout, n, s in MBV2:
        for j in range(n):
            feats.append(InvertedResidual(c, cout, s if j == 0 else 1, t))
            c = cout
    feats.append(cbr(c, 1280, 1, 1))
    return nn.Sequential(OrderedDict([
        ("features", nn.Sequential(*feats)),
        ("avgpool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
        ("classifier", nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, k))),
    ]))


SPECS = {"lenet": (lenet, (1, 28, 28), 64), "vgg16": (vgg16, (3, 32, 32), 32),
         "resnet18": (resnet18, (3, 32, 32), 32), "mobilenetv2": (mobilenetv2, (3, 32, 32), 32)}


# ----------------------------------------------------------------------------- helpers
def layout(model):
    """the text bench/models.lua signs: modules "path:Type", parameters "name:AxB"
    (registration order, as mdoctor's named_modules / named_parameters)"""
    lines = [f"m {name}:{type(m).__name__}" for name, m in model.named_modules()]
    params = list(model.named_parameters())
    lines += [f"p {name}:" + "x".join(str(d) for d in p.shape) for name, p in params]
    return "\n".join(lines), sum(p.numel() for _, p in params), len(params), len(lines) - len(params)


def fnv1a(s):
    h = 2166136261
    for b in s.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return f"{h:08x}"


def peak_rss_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return -1.0


def backend():
    cfg = torch.__config__.show()
    keep = []
    for line in cfg.splitlines():
        line = line.strip(" -")
        if line.startswith(("Intel(R) MKL-DNN", "oneDNN", "Intel(R) oneAPI", "OpenMP", "CPU capability", "LAPACK")):
            keep.append(line)
        elif line.startswith("Build settings"):
            for kv in line.split(", "):
                if kv.split("=")[0].split()[-1] in ("BLAS_INFO", "USE_MKLDNN", "USE_OPENMP"):
                    keep.append(kv.split()[-1])
    keep.append(f"mkldnn available={torch.backends.mkldnn.is_available()}")
    keep.append(f"{torch.get_num_threads()} thread" + ("s" if torch.get_num_threads() != 1 else ""))
    return f"pytorch {torch.__version__}: " + "; ".join(keep)


def read_safetensors(path):
    """{name: tensor} from a safetensors file (F32 and I64 are all mdoctor writes)"""
    import json
    import struct
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    types = {"F32": torch.float32, "I64": torch.int64, "F64": torch.float64, "I32": torch.int32}
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        raw = bytearray(blob[8 + n + a:8 + n + b])
        t = torch.frombuffer(raw, dtype=types[e["dtype"]]) if b > a else torch.zeros(0, dtype=types[e["dtype"]])
        out[name] = t.reshape(e["shape"]).clone()
    return out


def verify(model, path):
    """the same weights must give the same eval-mode logits on both sides, and
    the same Model Doctor terms on the last conv with the same gradient on
    the first parameter (through the double backward)"""
    sd = read_safetensors(path)
    x, want = sd.pop("__x"), sd.pop("__logits")
    y, mask, bg, terms, gfirst = (sd.pop(k) for k in ("__y", "__mask", "__bg", "__terms", "__gfirst"))
    model.load_state_dict(sd, strict=True)
    model.eval()
    with torch.no_grad():
        got = model(x)
    diff = (got - want).abs().max().item()
    scale = max(want.abs().max().item(), 1.0)
    ok = diff <= 1e-4 * scale
    print(f"verify model={args.model} logits max_abs_diff={diff:.3g} (scale {scale:.3g}) ok={int(ok)}")

    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    store = {}
    h = convs[-1].register_forward_hook(lambda mod, inp, out: store.__setitem__("m", out))
    logits = model(x)
    h.remove()
    B = x.shape[0]
    g = torch.autograd.grad(logits[torch.arange(B), y].sum(), store["m"], create_graph=True)[0]
    ce = F.cross_entropy(logits, y)
    channel = (F.relu(g).sum((2, 3)) * mask[y]).sum() / B
    space = (g.abs() * bg).sum()
    (ce + channel + space).backward()
    first = next(iter(model.parameters()))
    mine = torch.tensor([ce.item(), channel.item(), space.item()])
    tdiff = ((mine - terms).abs() / terms.abs().clamp(min=1e-3)).max().item()
    gdiff = (first.grad - gfirst).abs().max().item() / max(gfirst.abs().max().item(), 1e-12)
    ok2 = tdiff <= 1e-3 and gdiff <= 1e-3
    print(f"verify model={args.model} md terms (ce, channel, space) = ({mine[0]:.5g}, {mine[1]:.5g}, {mine[2]:.5g}) "
          f"rel_diff={tdiff:.3g}; first parameter's gradient rel_diff={gdiff:.3g} ok={int(ok2)}")
    return ok and ok2


# ----------------------------------------------------------------------------- main
def main():
    make, shape, default_b = SPECS[args.model]
    model = make()
    text, nparams, ntensors, nmodules = layout(model)
    if args.dump_arch:
        print(text)
        return
    print("backend " + backend())
    print(f"arch model={args.model} params={nparams} tensors={ntensors} modules={nmodules} sig={fnv1a(text)}")
    if args.arch:
        return
    if args.verify:
        sys.exit(0 if verify(model, args.verify) else 1)

    B = args.batch or default_b
    x = torch.randn(B, *shape)
    y = torch.randint(0, 10, (B,))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    model.train()

    if args.step == "train":
        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss
    elif args.step == "fwd":
        def step():
            model.eval()
            with torch.no_grad():
                out = model(x)
            model.train()
            return out
    else:
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        conv = convs[-1] if args.step == "md_last" else convs[0]
        store, on = {}, [False]

        def hook(mod, inp, out):
            if on[0]:
                store["m"] = out
        conv.register_forward_hook(hook)
        model.eval()
        on[0] = True
        with torch.no_grad():
            model(x[:min(2, B)])
        on[0] = False
        model.train()
        C, H, W = store.pop("m").shape[1:]
        mask = (torch.rand(10, C) > 0.5).float()  # (classes, C) 1 = irrelevant kernel
        bg = (torch.rand(H, W) > 0.5).float()     # (H, W) background
        bg[0, 0] = 1.0  # never all zero (VGG's last map is 2x2)
        idx = torch.arange(B)
        idx_mask = mask[y]

        def step():
            opt.zero_grad(set_to_none=True)
            on[0] = True
            logits = model(x)
            on[0] = False
            m = store.pop("m")
            ce = F.cross_entropy(logits, y)
            g = torch.autograd.grad(logits[idx, y].sum(), m, create_graph=True)[0]
            channel = (F.relu(g).sum((2, 3)) * idx_mask).sum() / B
            space = (g.abs() * bg).sum()
            total = ce + channel + space
            total.backward()
            opt.step()
            return total, ce, channel, space

        if args.check:
            total, ce, channel, space = step()
            print(f"check ce={ce.item():.4f} channel={channel.item():.4f} space={space.item():.4f} "
                  f"total={total.item():.4f} hooked={B}x{C}x{H}x{W}")

    for _ in range(args.warmup):
        step()
    ts = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        r = step()
        ts.append((time.perf_counter() - t0) * 1e3)
    final = 0.0 if args.step == "fwd" else (r[0] if isinstance(r, tuple) else r).item()
    ts.sort()
    n = len(ts)
    med = ts[(n - 1) // 2] if n % 2 else (ts[n // 2 - 1] + ts[n // 2]) / 2
    print(f"result impl=pytorch model={args.model} step={args.step} threads={torch.get_num_threads()} batch={B} "
          f"steps={args.steps} warmup={args.warmup} median_ms={med:.3f} min_ms={ts[0]:.3f} max_ms={ts[-1]:.3f} "
          f"rss_mb={peak_rss_mb():.1f} loss={final:.4f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
