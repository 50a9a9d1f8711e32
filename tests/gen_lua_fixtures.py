#!/usr/bin/python3
"""Write the fixtures of the Lua tests, tests/fixtures/lua_*.safetensors
(committed: running the tests needs neither Python nor torch).

    /usr/bin/python3 tests/gen_lua_fixtures.py     # needs torch (1.13 is fine)

Every value is computed by torch in float64 from inputs and parameters that
are float32 values, and stored as float32 (labels and counters as int64), so
the Lua side (float32) is compared with the exact answer.  Lists of names
(state_dict keys in order) are stored as int64 tensors of byte values, the
names joined by newlines.

lua_example.safetensors   the double-backward example of the issue
    x (2,3,8,8), w (4,3,3,3); y = conv2d(x, w, padding 1);
    for act in relu, tanh, silu:
      g_<act>  = d sum(act(y)) / dw        (create_graph)
      gw_<act> = d sum(g*g) / dw           (zero for relu: piecewise linear)

lua_nn.safetensors        modules against torch.nn
    act.*    elementwise activations of act.x
    pool.*   max/avg/adaptive pools of pool.x
    conv.*   grouped/strided conv without bias, rectangular conv with bias
    lin.*    a linear layer
    net.*    Sequential(Conv2d(3,4,3,p=1), BatchNorm2d(4), ReLU, MaxPool2d(2),
             Flatten, Linear(64,5)): state (net.sd.<key>), input, labels, the
             train-mode output, the CE loss and its parameter gradients
             (net.grad.<key>), the state after that step (net.after.<key>) and
             the eval-mode output after it (net.out_eval)
    res.*    a Module subclass (stem Sequential, a residual block with named
             children, pool, fc): state, outputs in train and eval mode
    names.*  named_parameters / state_dict key lists of both nets

lua_optim.safetensors     optimisers and schedules against torch.optim
    p0.a (3,4), p0.b (5); grads g1.*, g2.*, g3.* (one per step);
    <config>.1.* and <config>.3.*: the parameters after one and three steps;
    sched.<name>: the lr after 0, 1, 2, ... scheduler steps
"""
import os

from fixture_io import f32, save_torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")


def save(path, named):
    save_torch(path, named, "tests/gen_lua_fixtures.py")


def names_tensor(names):
    import torch
    return torch.tensor(list("\n".join(names).encode("ascii")), dtype=torch.int64)


def example():
    import torch
    import torch.nn.functional as F
    torch.manual_seed(0)
    x = f32(torch.randn(2, 3, 8, 8))
    w = f32(torch.randn(4, 3, 3, 3))
    out = [("x", x), ("w", w), ("y", F.conv2d(x, w, None, stride=1, padding=1))]
    for name, act in (("relu", F.relu), ("tanh", torch.tanh), ("silu", F.silu)):
        ww = w.clone().requires_grad_(True)
        y = F.conv2d(x, ww, None, stride=1, padding=1)
        if name == "relu":
            assert y.abs().min().item() > 1e-3, "relu input too close to 0"
        g = torch.autograd.grad(act(y).sum(), [ww], create_graph=True)[0]
        gw = torch.autograd.grad((g * g).sum(), [ww])[0]
        out += [("g_" + name, g), ("gw_" + name, gw)]
    save(os.path.join(OUT, "lua_example.safetensors"), out)


def nn_fixture():
    import torch
    import torch.nn as tnn
    import torch.nn.functional as F
    torch.manual_seed(7)
    out = []

    # activations on values spread over [-4, 4)
    x = f32(torch.rand(2, 3, 5, 5) * 8 - 4)
    out.append(("act.x", x))
    acts = {"relu": tnn.ReLU(), "relu6": tnn.ReLU6(), "leaky_relu": tnn.LeakyReLU(0.2),
            "sigmoid": tnn.Sigmoid(), "tanh": tnn.Tanh(), "silu": tnn.SiLU(),
            "hardswish": tnn.Hardswish(), "hardsigmoid": tnn.Hardsigmoid()}
    for k, m in acts.items():
        out.append(("act." + k, m(x)))
    out.append(("act.relu6_big", tnn.ReLU6()(x * 3)))

    # pools on a 7x7 map
    x = f32(torch.randn(2, 3, 7, 7))
    out.append(("pool.x", x))
    out.append(("pool.max3s2p1", tnn.MaxPool2d(3, stride=2, padding=1)(x)))
    out.append(("pool.max2ceil", tnn.MaxPool2d(2, ceil_mode=True)(x)))
    out.append(("pool.avg2", tnn.AvgPool2d(2)(x)))
    out.append(("pool.avg3s2p1", tnn.AvgPool2d(3, stride=2, padding=1)(x)))
    out.append(("pool.avg3s2p1_nopad", tnn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)(x)))
    out.append(("pool.adapt2", tnn.AdaptiveAvgPool2d(2)(x)))
    out.append(("pool.adapt3x2", tnn.AdaptiveAvgPool2d((3, 2))(x)))

    # convolutions
    x = f32(torch.randn(2, 4, 7, 7))
    out.append(("conv.x", x))
    cg = tnn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False).double()
    cs = tnn.Conv2d(4, 3, (3, 2), stride=(2, 1), padding=(1, 0)).double()
    with torch.no_grad():
        for m in (cg, cs):
            for p in m.parameters():
                p.copy_(f32(p))
    out += [("conv.g.weight", cg.weight), ("conv.g.y", cg(x)),
            ("conv.s.weight", cs.weight), ("conv.s.bias", cs.bias), ("conv.s.y", cs(x))]

    # linear
    x = f32(torch.randn(3, 5))
    lin = tnn.Linear(5, 4).double()
    with torch.no_grad():
        for p in lin.parameters():
            p.copy_(f32(p))
    out += [("lin.x", x), ("lin.weight", lin.weight), ("lin.bias", lin.bias), ("lin.y", lin(x))]

    # a Sequential net, train then eval
    net = tnn.Sequential(tnn.Conv2d(3, 4, 3, padding=1), tnn.BatchNorm2d(4), tnn.ReLU(),
                         tnn.MaxPool2d(2), tnn.Flatten(), tnn.Linear(64, 5)).double()
    with torch.no_grad():
        net[1].weight.copy_(1 + 0.3 * torch.randn(4))
        net[1].bias.copy_(0.2 * torch.randn(4))
        net[1].running_mean.copy_(0.5 * torch.randn(4))
        net[1].running_var.copy_(0.5 + torch.rand(4))
        net[1].num_batches_tracked.fill_(5)
        for t in list(net.parameters()) + [net[1].running_mean, net[1].running_var]:
            t.copy_(f32(t))
    out.append(("names.net_params", names_tensor([k for k, _ in net.named_parameters()])))
    out.append(("names.net_state", names_tensor(list(net.state_dict().keys()))))
    out += [("net.sd." + k, v.clone()) for k, v in net.state_dict().items()]
    x = f32(torch.randn(4, 3, 8, 8))
    y = torch.tensor([0, 3, 1, 4])
    net.train()
    o = net(x)
    loss = F.cross_entropy(o, y)
    grads = torch.autograd.grad(loss, list(net.parameters()))
    out += [("net.x", x), ("net.y", y), ("net.out_train", o), ("net.loss", loss)]
    out += [("net.grad." + k, g) for (k, _), g in zip(net.named_parameters(), grads)]
    out += [("net.after." + k, v.clone()) for k, v in net.state_dict().items()]
    net.eval()
    out.append(("net.out_eval", net(x)))

    # a Module subclass with a residual block of named children
    class Res(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv = tnn.Conv2d(4, 4, 3, padding=1)
            self.bn = tnn.BatchNorm2d(4)

        def forward(self, x):
            return x + F.relu(self.bn(self.conv(x)))

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.stem = tnn.Sequential(tnn.Conv2d(3, 4, 3, padding=1, bias=False), tnn.BatchNorm2d(4), tnn.ReLU())
            self.block = Res()
            self.pool = tnn.AdaptiveAvgPool2d(1)
            self.fc = tnn.Linear(4, 3)

        def forward(self, x):
            return self.fc(self.pool(self.block(self.stem(x))).flatten(1))

    rn = Net().double()
    with torch.no_grad():
        for bn in (rn.stem[1], rn.block.bn):
            bn.weight.copy_(1 + 0.3 * torch.randn(4))
            bn.bias.copy_(0.2 * torch.randn(4))
            bn.running_mean.copy_(0.5 * torch.randn(4))
            bn.running_var.copy_(0.5 + torch.rand(4))
        for t in list(rn.parameters()) + [b for b in rn.buffers() if b.dtype != torch.int64]:
            t.copy_(f32(t))
    out.append(("names.res_params", names_tensor([k for k, _ in rn.named_parameters()])))
    out.append(("names.res_state", names_tensor(list(rn.state_dict().keys()))))
    out += [("res.sd." + k, v.clone()) for k, v in rn.state_dict().items()]
    x = f32(torch.randn(2, 3, 6, 6))
    out.append(("res.x", x))
    rn.train()
    out.append(("res.out_train", rn(x)))
    rn.eval()
    out.append(("res.out_eval", rn(x)))
    save(os.path.join(OUT, "lua_nn.safetensors"), out)


OPTIM_CONFIGS = [
    ("sgd", "SGD", dict(lr=0.1)),
    ("sgd_mom", "SGD", dict(lr=0.1, momentum=0.9)),
    ("sgd_nesterov", "SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("sgd_wd", "SGD", dict(lr=0.1, weight_decay=0.05)),
    ("sgd_damp", "SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    ("adam", "Adam", dict(lr=0.01)),
    ("adam_wd", "Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("adamw", "AdamW", dict(lr=0.01)),
    ("adamw_wd", "AdamW", dict(lr=0.02, betas=(0.85, 0.995), eps=1e-7, weight_decay=0.1)),
]


def optim_fixture():
    import torch
    torch.manual_seed(3)
    p0 = {"a": f32(torch.randn(3, 4)), "b": f32(torch.randn(5))}
    grads = [{k: f32(torch.randn(*v.shape)) for k, v in p0.items()} for _ in range(3)]
    out = [("p0." + k, v) for k, v in p0.items()]
    for s, g in enumerate(grads):
        out += [("g%d.%s" % (s + 1, k), v) for k, v in g.items()]
    for name, cls, kw in OPTIM_CONFIGS:
        ps = {k: v.clone().requires_grad_(True) for k, v in p0.items()}
        opt = getattr(torch.optim, cls)([ps["a"], ps["b"]], **kw)
        for s in range(3):
            for k in ps:
                ps[k].grad = grads[s][k].clone()
            opt.step()
            if s in (0, 2):
                out += [("%s.%d.%s" % (name, s + 1, k), v.detach().clone()) for k, v in ps.items()]

    def lrs(make, n):
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=0.1)
        sch = make(opt)
        seq = [opt.param_groups[0]["lr"]]
        for _ in range(n):
            opt.step()
            sch.step()
            seq.append(opt.param_groups[0]["lr"])
        return torch.tensor(seq, dtype=torch.float64)

    S = torch.optim.lr_scheduler
    out.append(("sched.step", lrs(lambda o: S.StepLR(o, step_size=3, gamma=0.5), 10)))
    out.append(("sched.step_default", lrs(lambda o: S.StepLR(o, step_size=2), 7)))
    out.append(("sched.multistep", lrs(lambda o: S.MultiStepLR(o, milestones=[2, 5, 7], gamma=0.3), 10)))
    out.append(("sched.cosine", lrs(lambda o: S.CosineAnnealingLR(o, T_max=6, eta_min=0.001), 15)))
    out.append(("sched.cosine0", lrs(lambda o: S.CosineAnnealingLR(o, T_max=4), 8)))
    save(os.path.join(OUT, "lua_optim.safetensors"), out)


if __name__ == "__main__":
    import warnings
    warnings.filterwarnings("ignore")
    os.makedirs(OUT, exist_ok=True)
    example()
    nn_fixture()
    optim_fixture()
    for fn in sorted(os.listdir(OUT)):
        if fn.startswith("lua_"):
            print("%-28s %7d bytes" % (fn, os.path.getsize(os.path.join(OUT, fn))))
