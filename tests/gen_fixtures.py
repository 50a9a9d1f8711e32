#!/usr/bin/python3
"""Write the binary fixtures under tests/fixtures/ (committed; the C tests only
read them, so running the tests needs neither Python nor torch).

    /usr/bin/python3 tests/gen_fixtures.py        # needs torch (1.13 is fine)

python_small.safetensors
    A file written by hand with struct + json (no torch, no safetensors module)
    holding every dtype the reader converts (F32, F64, F16, BF16, I64, I32), a
    0-d tensor, an empty tensor, a name with JSON escapes and __metadata__.
    tests/c/test_safetensors.c checks its values exactly.

convnet.safetensors
    A small conv net computed by torch in float64 from parameters and inputs
    that are float32 values, so the C engine (float32) sees the same numbers:

      x (4,3,8,8) -> conv1 (3->6, 3x3, pad 1, bias) -> batch norm (training) -> relu
        -> max pool 2 -> p
      p -> conv2 (6->6, 3x3, pad 1, no bias) -> batch norm (training) -> relu -> + p = m
      m -> conv3 (6->8, 3x3, stride 2, pad 1, bias) -> relu -> adaptive avg pool 1
        -> flatten -> fc (8->5) = logits

    Stored: every parameter, x, y, mask, sigma, m, logits, the CE loss and its
    gradient w.r.t. every parameter (grad.<p>), and three Model-Doctor
    quantities with their gradients w.r.t. every parameter (dQ.<p>, dQ1.<p>,
    dQ2.<p>); sel = sum_b logits[b, y_b]:

      g   = d sel / d m                   (create_graph)
      Q   = sum(relu(g) * mask)           mask (4,6,1,1) 0/1, per (sample, channel)
      g1  = d sel / d h1                  h1 = conv1's output (before bn1)
      Q1  = sum(relu(g1) * mask)
      m_J = cat(m, m, m) + sigma          sigma (12,6,4,4) uniform in [-0.1, 0.1),
                                          the J=3 noisy copies batched (Eq. 4)
      g_J = d(sum_{j,b} logits_J[j*4+b, y_b]) / d m_J   (create_graph)
      Q2  = sum_j sum(|g_J[j]| * mask) / 3

    Why Q1: the net after m (conv, relu, average pool, linear) is piecewise
    linear in m, so g does not change with m and dQ, dQ2 are exactly zero for
    every parameter before m; only conv3.weight and fc.weight get a gradient,
    through the graph of the backward formulas.  Cutting at h1 instead puts
    bn1, relu, max pool, conv2, bn2, the residual add, conv3, the average pool
    and fc behind the cut, so dQ1 goes through the double backward of all of
    them (training-mode batch norm makes g1 depend on h1) and reaches conv1
    through conv1's ordinary backward.  Gradients that are identically zero
    (conv1.bias before a training-mode batch norm, and the ones above) are
    stored as torch gives them (zeros or rounding noise).

The seed is searched (deterministically) so that no value sits near a kink
(within 2e-4 for relu inputs and the top two of a max-pool window, within
2e-5 of max|g| for g, g1 and g_J at 0): there float32 and float64 could take
different branches.
"""
import os
import struct
import sys

from fixture_io import f32, write_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")


def python_small():
    def pack(fmt, vals):
        return struct.pack("<%d%s" % (len(vals), fmt), *vals)

    def bf16(vals):  # the top 16 bits of the float32 (the values are exact in bf16)
        return b"".join(struct.pack("<H", struct.unpack("<I", struct.pack("<f", v))[0] >> 16) for v in vals)

    inf = float("inf")
    t = [
        ("f32", "F32", [2, 3], pack("f", [0.5, -1.25, 3.0, 1e-3, -7.5, 100.0])),
        ("f64", "F64", [3], pack("d", [1.0 / 3.0, -2.5, 1e10])),
        ("f16", "F16", [2, 3], pack("e", [1.0, -0.5, 65504.0, 2.0 ** -24, inf, -0.0])),
        ("bf16", "BF16", [3], bf16([1.0, -3.140625, 0.0234375])),
        ("i64", "I64", [4], pack("q", [0, -1, 2 ** 40, -(2 ** 62)])),
        ("i32", "I32", [2, 2], pack("i", [1, -2, 2147483647, -2147483648])),
        ("scalar", "F32", [], pack("f", [42.0])),
        ("empty", "F32", [0, 3], b""),
        ('odd "name"\\ \u00e9/\t', "F32", [1], pack("f", [7.0])),
    ]
    write_safetensors(os.path.join(OUT, "python_small.safetensors"), t,
                      {"format": "pt", "written_by": "tests/gen_fixtures.py"})


def convnet():
    import torch
    import torch.nn.functional as F

    torch.set_default_dtype(torch.float64)

    def bn(h, w, b):
        return F.batch_norm(h, None, None, w, b, training=True, eps=1e-5)

    def margin_pool(a):  # smallest gap between the top two of a window whose max is > 0
        w = F.unfold(a.reshape(-1, 1, 8, 8), 2, stride=2).transpose(1, 2)  # (., 16, 4)
        s = w.sort(dim=-1, descending=True).values
        live = s[..., 0] > 0
        gaps = (s[..., 0] - s[..., 1])[live]
        return gaps.min().item() if gaps.numel() else 1.0

    names = ["conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight",
             "bn2.bias", "conv3.weight", "conv3.bias", "fc.weight", "fc.bias"]
    N, J, delta = 4, 3, 2e-4
    for seed in range(int(os.environ.get("NSEEDS", "1000"))):
        torch.manual_seed(1234 + seed)
        x = f32(torch.randn(N, 3, 8, 8))
        y = torch.randint(0, 5, (N,))
        P = [f32(torch.randn(6, 3, 3, 3) * 0.3), f32(torch.randn(6) * 0.1),
             f32(1 + 0.2 * torch.randn(6)), f32(0.1 * torch.randn(6)),
             f32(torch.randn(6, 6, 3, 3) * 0.2), f32(1 + 0.2 * torch.randn(6)),
             f32(0.1 * torch.randn(6)),
             f32(torch.randn(8, 6, 3, 3) * 0.2), f32(0.1 * torch.randn(8)),
             f32(torch.randn(5, 8) * 0.4), f32(0.1 * torch.randn(5))]
        mask = (torch.rand(N, 6, 1, 1) < 0.5).double()
        sigma = f32(torch.rand(J * N, 6, 4, 4) * 0.2 - 0.1)
        for p in P:
            p.requires_grad_(True)
        w1, b1, g1, be1, w2, g2, be2, w3, b3, wl, bl = P

        h1 = F.conv2d(x, w1, b1, padding=1)
        pre1 = bn(h1, g1, be1)
        a1 = F.relu(pre1)
        p = F.max_pool2d(a1, 2)
        pre2 = bn(F.conv2d(p, w2, None, padding=1), g2, be2)
        m = F.relu(pre2) + p

        pre3s = []

        def tail(mm):
            pre3 = F.conv2d(mm, w3, b3, stride=2, padding=1)
            pre3s.append(pre3)
            z = F.adaptive_avg_pool2d(F.relu(pre3), 1).flatten(1)
            return F.linear(z, wl, bl)

        logits = tail(m)
        loss = F.cross_entropy(logits, y)
        grads = torch.autograd.grad(loss, P, retain_graph=True)

        sel = logits.gather(1, y[:, None]).sum()
        g = torch.autograd.grad(sel, m, create_graph=True)[0]
        Q = (F.relu(g) * mask).sum()
        dQ = torch.autograd.grad(Q, P, retain_graph=True, allow_unused=True)

        g1 = torch.autograd.grad(sel, h1, create_graph=True)[0]
        Q1 = (F.relu(g1) * mask).sum()
        dQ1 = torch.autograd.grad(Q1, P, retain_graph=True, allow_unused=True)

        mJ = torch.cat([m] * J, 0) + sigma
        logitsJ = tail(mJ)
        selJ = logitsJ.gather(1, y.repeat(J)[:, None]).sum()
        gJ = torch.autograd.grad(selJ, mJ, create_graph=True)[0]
        Q2 = (gJ.abs().reshape(J, N, 6, 4, 4) * mask).sum() / J
        dQ2 = torch.autograd.grad(Q2, P, allow_unused=True)

        margins = [pre1.abs().min().item(), margin_pool(a1.detach()), pre2.abs().min().item(),
                   min(t.abs().min().item() for t in pre3s),
                   g.abs().min().item() / g.abs().max().item(),
                   g1.abs().min().item() / g1.abs().max().item(),
                   gJ.abs().min().item() / gJ.abs().max().item()]
        if os.environ.get("DEBUG_MARGINS"):
            print(seed, ["%.2g" % v for v in margins])
        # values of order one (relu inputs, pool windows) need 2e-4; the
        # gradients are compared with their largest entry, and float32 keeps
        # them to ~1e-6 of it, so 2e-5 of it is plenty
        if min(margins[:4]) > delta and min(margins[4:]) > delta / 10:
            break
    else:
        sys.exit("no seed keeps every value away from the kinks")
    print("convnet: seed %d, kink margins %s" % (1234 + seed, ", ".join("%.2g" % v for v in margins)))
    print("  loss %.6f  Q %.6f  Q1 %.6f  Q2 %.6f" % (loss.item(), Q.item(), Q1.item(), Q2.item()))

    def rec(name, t):
        t = t.detach()
        if t.dtype == torch.int64:
            return (name, "I64", list(t.shape), t.contiguous().numpy().astype("<i8").tobytes())
        return (name, "F32", list(t.shape), t.float().contiguous().numpy().astype("<f4").tobytes())

    out = [rec("x", x), rec("y", y), rec("mask", mask), rec("sigma", sigma)]
    out += [rec(n, p) for n, p in zip(names, P)]
    out += [rec("m", m), rec("logits", logits), rec("loss", loss), rec("g", g), rec("Q", Q),
            rec("g1", g1), rec("Q1", Q1), rec("Q2", Q2)]
    for prefix, gs in (("grad.", grads), ("dQ.", dQ), ("dQ1.", dQ1), ("dQ2.", dQ2)):
        out += [rec(prefix + n, gg if gg is not None else torch.zeros_like(p))
                for n, p, gg in zip(names, P, gs)]
    write_safetensors(os.path.join(OUT, "convnet.safetensors"), out,
                      {"written_by": "tests/gen_fixtures.py", "torch": torch.__version__,
                       "seed": str(1234 + seed)})


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    python_small()
    convnet()
    for fn in sorted(os.listdir(OUT)):
        print("%-28s %7d bytes" % (fn, os.path.getsize(os.path.join(OUT, fn))))
