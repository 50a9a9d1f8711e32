#!/usr/bin/python3
"""Write tests/fixtures/doctor_losses.safetensors, the PyTorch reference of
tests/lua/test_doctor.lua (committed: running the tests needs neither Python
nor torch).

    /usr/bin/python3 tests/gen_doctor_fixtures.py     # needs torch (1.13 is fine)

The network, built the same way on both sides (module paths "0" .. "7"):

    Sequential(Conv2d(1, 4, 3, padding=1), BatchNorm2d(4), ReLU(),
               Conv2d(4, 6, 3), ReLU(), AdaptiveAvgPool2d(1), Flatten(),
               Linear(6, 3))

on a batch of 4 images 8x8 (layer "0" and "2" maps are 8x8, layer "3" 6x6).
Every value is computed in float64 from float32 inputs and parameters and
stored as float32 (labels as int64).

Contents
    sd.<key>            the state dict (BatchNorm running stats non-trivial)
    x (4,1,8,8), y (4) int64 (samples 1 and 3 classified correctly in train
                        mode, so the runner-up differs from the prediction
                        there), masks (4,1,8,8) 0/1 object masks, has_mask (4)
    irr.<layer>         (3, C) 0/1 channel masks (1 = irrelevant kernel)
    mfl.e<E>.s<S>       md.mask_for_layer(masks, E, S, S) as documented in
                        core/mask.c: dilate by a (2E+1)^2 square in input
                        space (clipped at the border), then the area-average
                        resize to SxS (output cell o covers input
                        [o*N/S, (o+1)*N/S)), object where the cover >= 0.5
    case.<name>.*       doctor.losses in train mode (BatchNorm batch stats):
                        logits, ce, lch, lsp (absent when the loss is nil),
                        grad.<param> = d(ce + lch + lsp)/d param (double
                        backward through the gradients at the layers)
    corr.<layer>.<form>.<score>  doctor.correlations in eval mode, J = 1:
                        (4, C) sum over pixels of |g| (paper) or relu(g)
                        (code), g = d sum_b score[b, y_b] / d layer output
    eval_logits         the eval-mode logits

The seed is the first whose relu inputs, runner-up margins and nonzero
gradient entries at the layers stay away from 0, so float32 (md) and float64
(here) take the same side of every kink (relu, abs, runner-up argmax).

The loss definitions follow the documentation of lua/mdoctor/doctor.lua:
    a(g)  = sum over pixels of |g| (paper) or relu(g) (code)
    L_ch  = sum_layers [ sum_b sum_k a(g_y)[b,k] * irr[y_b, k] / B
                         + runner_up * sum_b sum_k |g_r|[b,k] / B ]
            g_y = d sum_b s[b, y_b] / d m, g_r the same for the runner-up
            class r_b = argmax of the logits other than y_b; s = logits
            ("logit") or softmax ("prob"); runner_up defaults to 1; in the
            code form the runner-up term is relu(g_r) on the kernels relevant
            to the runner-up (1 - irr[r]), as the authors' code
    L_sp  = sum_layers sum_b sum_{c,h,w} |g_y| * (1 - fg) / B, fg =
            mask_for_layer(mask, expand, layer size); with has_mask the
            sum over b is weighted by it and divided by sum(has_mask)
"""
import os

import torch
import torch.nn as tnn
import torch.nn.functional as F

from fixture_io import f32, save_torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")


def save(path, named):
    save_torch(path, named, "tests/gen_doctor_fixtures.py")


def make_net():
    return tnn.Sequential(tnn.Conv2d(1, 4, 3, padding=1), tnn.BatchNorm2d(4), tnn.ReLU(),
                          tnn.Conv2d(4, 6, 3), tnn.ReLU(), tnn.AdaptiveAvgPool2d(1), tnn.Flatten(),
                          tnn.Linear(6, 3)).double()


# {====================================================== masks as core/mask.c
def area_weights(N, n):
    """(n, N): output o covers input [o*N/n, (o+1)*N/n); weight = overlap / (N/n)"""
    A = torch.zeros(n, N, dtype=torch.float64)
    for o in range(n):
        lo, hi = o * N, (o + 1) * N  # in units of 1/n input cells
        for i in range(N):
            a0, a1 = max(i * n, lo), min((i + 1) * n, hi)
            if a1 > a0:
                A[o, i] = (a1 - a0) / N
    return A


def mask_for_layer(m, expand, h, w):
    """m (B,1,H,W) 0/1 float64"""
    if expand > 0:  # max filter over a square, -inf outside = clipped window
        m = F.max_pool2d(m, 2 * expand + 1, stride=1, padding=expand)
    H, W = m.shape[-2:]
    r = area_weights(H, h) @ m @ area_weights(W, w).T
    return (r >= 0.5 - 1e-9).double()
# }======================================================


def grad_corr(g, form):
    a = torch.relu(g) if form == "code" else g.abs()
    return a.sum(dim=(2, 3))


def losses(net, x, y, masks, spec, has_mask=None):
    """the reference of doctor.losses: logits, ce, lch, lsp (None when absent)"""
    form = spec.get("form", "paper")
    paths = []
    for l in spec.get("ch", []) + spec.get("sp", []):
        if l not in paths:
            paths.append(l)
    feats = {}
    hooks = [net[int(p)].register_forward_hook(lambda mod, inp, out, p=p: feats.__setitem__(p, out)) for p in paths]
    logits = net(x)
    for hk in hooks:
        hk.remove()
    ce = F.cross_entropy(logits, y)
    B = x.shape[0]
    sc = torch.softmax(logits, 1) if spec.get("score") == "prob" else logits
    fl = [feats[p] for p in paths]
    gl = torch.autograd.grad(sc.gather(1, y[:, None]).sum(), fl, create_graph=True)
    gl = dict(zip(paths, gl))
    ru_w = spec.get("runner_up", 1.0)
    gr = None
    if spec.get("ch") and ru_w != 0:
        masked = logits.detach().clone()
        masked[torch.arange(B), y] = -float("inf")
        ru = masked.argmax(1)
        gr = dict(zip(paths, torch.autograd.grad(sc.gather(1, ru[:, None]).sum(), fl, create_graph=True)))
    lch = None
    for l in spec.get("ch", []):
        irr = spec["irr"][l]
        term = (grad_corr(gl[l], form) * irr[y]).sum() / B
        if gr is not None:
            if form == "code":  # the authors' code: relu(grad) of the runner-up on its relevant kernels
                term = term + (grad_corr(gr[l], "code") * (1 - irr[ru])).sum() * (ru_w / B)
            else:
                term = term + grad_corr(gr[l], "paper").sum() * (ru_w / B)
        lch = term if lch is None else lch + term
    lsp = None
    if masks is not None:
        for l in spec.get("sp", []):
            g = gl[l]
            fg = mask_for_layer(masks, spec.get("expand", 30), g.shape[2], g.shape[3])
            per = (g.abs() * (1 - fg)).sum(dim=(1, 2, 3))
            if has_mask is not None:
                term = (per * has_mask).sum() / max(has_mask.sum().item(), 1)
            else:
                term = per.sum() / B
            lsp = term if lsp is None else lsp + term
    return logits, ce, lch, lsp, gl, gr


def check_kinks(net, x, y, paths):
    """the relu inputs and every gradient entry that is not exactly zero must
    be far from 0, so float32 and float64 take the same side of every kink"""
    pre = {}
    hooks = [net[i].register_forward_hook(lambda mod, inp, out, i=i: pre.__setitem__(i, out)) for i in (1, 3)]
    logits = net(x)
    for hk in hooks:
        hk.remove()
    worst = min(pre[1].abs().min().item(), pre[3].abs().min().item())
    masked = logits.detach().clone()
    masked[torch.arange(x.shape[0]), y] = -float("inf")
    top = masked.sort(1, descending=True).values
    margin = (top[:, 0] - top[:, 1]).min().item()  # runner-up unambiguous
    gmin = float("inf")
    for score in ("logit", "prob"):
        for spec_ru in (False, True):
            feats = {}
            hooks = [net[int(p)].register_forward_hook(lambda mod, inp, out, p=p: feats.__setitem__(p, out))
                     for p in paths]
            lg = net(x)
            for hk in hooks:
                hk.remove()
            sc = torch.softmax(lg, 1) if score == "prob" else lg
            cls = masked.argmax(1) if spec_ru else y
            gs = torch.autograd.grad(sc.gather(1, cls[:, None]).sum(), [feats[p] for p in paths])
            for g in gs:
                nz = g.abs()[g != 0]
                gmin = min(gmin, (nz / g.abs().max()).min().item())
    return worst, margin, gmin


def main():
    seed = 0
    while True:
        torch.manual_seed(seed)
        net = make_net()
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(f32(p * 1.5 + 0.05 * torch.randn_like(p)))
            net[1].weight.copy_(f32(1 + 0.3 * torch.randn(4)))
            net[1].bias.copy_(f32(0.2 * torch.randn(4)))
            net[1].running_mean.copy_(f32(0.3 * torch.randn(4)))
            net[1].running_var.copy_(f32(0.5 + torch.rand(4)))
            net[1].num_batches_tracked.fill_(3)
        x = f32(torch.randn(4, 1, 8, 8))
        net.train()
        # labels: two samples correctly classified (the runner-up is then the
        # second class), two not (the runner-up is the prediction)
        with torch.no_grad():
            order = net(x).argsort(1, descending=True)
        y = torch.stack([order[0, 0], order[1, 1], order[2, 0], order[3, 2]])
        w1, m1, g1 = check_kinks(net, x, y, ["0", "2", "3"])
        net.eval()
        w2, m2, g2 = check_kinks(net, x, y, ["0", "2", "3"])
        if min(w1, w2) > 2e-4 and min(m1, m2) > 1e-2 and min(g1, g2) > 1e-5:
            break
        seed += 1
        if seed % 200 == 0:
            print("seed", seed, w1, w2, m1, m2, g1, g2, flush=True)
    print("seed", seed, "kink margins", min(w1, w2), min(m1, m2), min(g1, g2))
    sd = {k: v.clone() for k, v in net.state_dict().items()}

    out = [("sd." + k, v) for k, v in sd.items()]
    out += [("x", x), ("y", y)]
    # object masks: a rectangle each (one touching the border, one tiny)
    masks = torch.zeros(4, 1, 8, 8, dtype=torch.float64)
    masks[0, 0, 2:6, 3:7] = 1
    masks[1, 0, 0:3, 0:8] = 1
    masks[2, 0, 4, 4] = 1
    masks[3, 0, 1:7, 2:5] = 1
    masks[3, 0, 6, 6] = 1
    has_mask = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    out += [("masks", masks), ("has_mask", has_mask)]
    irr = {"0": torch.tensor([[1, 0, 0, 1], [0, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.float64),
           "2": torch.tensor([[0, 1, 0, 1], [1, 0, 1, 0], [0, 0, 1, 1]], dtype=torch.float64),
           "3": torch.tensor([[1, 0, 1, 0, 0, 1], [0, 1, 0, 1, 1, 0], [1, 1, 0, 0, 1, 0]], dtype=torch.float64)}
    out += [("irr." + k, v) for k, v in irr.items()]
    for e in (0, 1, 2, 9):
        for s in (8, 6, 5, 3):
            out.append(("mfl.e%d.s%d" % (e, s), mask_for_layer(masks, e, s, s)))

    cases = {
        "paper_logit": {"form": "paper", "score": "logit", "ch": ["0", "3"], "sp": ["3"], "expand": 0},
        "paper_prob": {"form": "paper", "score": "prob", "ch": ["3"], "sp": ["0", "3"], "expand": 2},
        "paper_noru": {"form": "paper", "score": "logit", "runner_up": 0, "ch": ["0"], "sp": ["3"], "expand": 1},
        "paper_ru_half": {"form": "paper", "score": "prob", "runner_up": 0.5, "ch": ["2", "3"], "sp": ["2"],
                          "expand": 1},
        "code_logit": {"form": "code", "score": "logit", "ch": ["0", "3"], "sp": ["3"], "expand": 0},
        "code_prob_ru": {"form": "code", "score": "prob", "runner_up": 0.5, "ch": ["3"], "sp": ["0"],
                         "expand": 2},
        "code_ch_only": {"form": "code", "score": "logit", "ch": ["0", "2"], "sp": []},
        "sp_has_mask": {"form": "paper", "score": "logit", "ch": [], "sp": ["3", "0"], "expand": 1,
                        "has_mask": True},
        "sp_big_expand": {"form": "paper", "score": "logit", "ch": [], "sp": ["3"], "expand": 9},
    }
    for name, spec in cases.items():
        spec["irr"] = irr
        net.load_state_dict(sd)
        net.train()
        logits, ce, lch, lsp, _, _ = losses(net, x, y, masks, spec, has_mask if spec.get("has_mask") else None)
        total = ce + (lch if lch is not None else 0) + (lsp if lsp is not None else 0)
        params = list(net.named_parameters())
        grads = torch.autograd.grad(total, [p for _, p in params])
        pre = "case." + name + "."
        out += [(pre + "logits", logits), (pre + "ce", ce)]
        if lch is not None:
            out.append((pre + "lch", lch))
        if lsp is not None:
            out.append((pre + "lsp", lsp))
        out += [(pre + "grad." + k, g) for (k, _), g in zip(params, grads)]
        print(name, "ce %.5f" % ce.item(), "lch", None if lch is None else "%.5f" % lch.item(),
              "lsp", None if lsp is None else "%.5f" % lsp.item())

    # correlations, eval mode, J = 1
    net.load_state_dict(sd)
    net.eval()
    for layer in ("0", "2", "3"):
        for form in ("paper", "code"):
            for score in ("logit", "prob"):
                feats = {}
                hk = net[int(layer)].register_forward_hook(lambda mod, inp, o: feats.__setitem__("m", o))
                lg = net(x)
                hk.remove()
                sc = torch.softmax(lg, 1) if score == "prob" else lg
                g = torch.autograd.grad(sc.gather(1, y[:, None]).sum(), [feats["m"]])[0]
                out.append(("corr.%s.%s.%s" % (layer, form, score), grad_corr(g, form)))
    out.append(("eval_logits", net(x)))
    save(os.path.join(OUT, "doctor_losses.safetensors"), out)
    print("wrote", os.path.join(OUT, "doctor_losses.safetensors"))


if __name__ == "__main__":
    main()
