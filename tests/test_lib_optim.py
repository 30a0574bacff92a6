"""grucy.optim vs torch.optim on identical gradients; schedules; clipping; exact resume."""
import math

import numpy as np
import pytest

from grucy import optim

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, weight_decay=0.3, betas=(0.5, 0.9))),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, weight_decay=0.05)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True, momentum=0.5)),
]


def _params(dtype=np.float64):
    rng = np.random.default_rng(0)
    return {"w": rng.standard_normal((4, 3)).astype(dtype), "b": rng.standard_normal(3).astype(dtype)}


def _grad_seq(n, dtype=np.float64):
    rng = np.random.default_rng(1)
    return [{"w": rng.standard_normal((4, 3)).astype(dtype), "b": rng.standard_normal(3).astype(dtype)}
            for _ in range(n)]


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-6)])
@pytest.mark.parametrize("name,kw", CASES)
def test_matches_torch_optim(name, kw, dtype, tol):
    torch = pytest.importorskip("torch")
    params = _params(dtype)
    tparams = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in params.items()}
    opt = getattr(optim, name)(params, **kw)
    topt = getattr(torch.optim, name)(list(tparams.values()), **kw)
    for grads in _grad_seq(8, dtype):
        opt.step(grads)
        for k, t in tparams.items():
            t.grad = torch.from_numpy(grads[k].copy())
        topt.step()
        for k in params:
            np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), rtol=tol, atol=tol,
                                       err_msg=f"{name} {kw} {k}")
    start = _params(dtype)
    assert not np.allclose(params["w"], start["w"])  # the test moved something


@pytest.mark.parametrize("name,kw", CASES)
def test_state_dict_resume_is_exact(name, kw):
    grads = _grad_seq(10)
    full = _params()
    o = getattr(optim, name)(full, **kw)
    for g in grads:
        o.step(g)

    half = _params()
    o1 = getattr(optim, name)(half, **kw)
    for g in grads[:5]:
        o1.step(g)
    sd = o1.state_dict()
    for g in grads[5:]:  # mutating after the snapshot must not leak into it
        o1.step(g)
    # the parameters as they were at the snapshot (a checkpoint stores both)
    o0 = getattr(optim, name)(_params(), **kw)
    for g in grads[:5]:
        o0.step(g)
    resumed = o0.params
    o2 = getattr(optim, name)(resumed, lr=123.0)  # hyper-parameters come from the state dict
    o2.load_state_dict(sd)
    assert o2.lr == kw["lr"] and o2.step_count == 5
    for g in grads[5:]:
        o2.step(g)
    for k in full:
        np.testing.assert_array_equal(resumed[k], full[k])


def test_load_state_dict_rejects_mismatch():
    o = optim.Adam(_params(), lr=0.1)
    o.step(_grad_seq(1)[0])
    sd = o.state_dict()
    with pytest.raises(ValueError, match="Adam"):
        optim.SGD(_params(), lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="state does not match params"):
        optim.Adam({"w": np.zeros((4, 3))}, lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="shape"):
        optim.Adam({"w": np.zeros((2, 3)), "b": np.zeros(3)}, lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="state"):
        o.load_state_dict({"foo": 1})


def test_params_updated_in_place_and_none_grad_skipped():
    params = _params()
    w, b = params["w"], params["b"]
    b0 = b.copy()
    opt = optim.SGD(params, lr=0.5)
    opt.step({"w": np.ones((4, 3)), "b": None})
    assert opt.params["w"] is w
    np.testing.assert_array_equal(b, b0)
    np.testing.assert_allclose(w, _params()["w"] - 0.5)


def test_betas_from_a_hydra_list_config():
    omegaconf = pytest.importorskip("omegaconf")
    betas = omegaconf.OmegaConf.create({"b": [0.8, 0.9]}).b
    assert optim.Adam(_params(), betas=betas).betas == (0.8, 0.9)


def test_accepts_model_with_parameters():
    from grucy.models import SequenceModel
    m = SequenceModel(2, 3, 1, seed=0)
    opt = optim.Adam(m, lr=0.1)
    assert set(opt.params) == set(m.parameters())


@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_clip_grad_norm_matches_torch(norm_type):
    torch = pytest.importorskip("torch")
    for scale in (0.01, 10.0):  # below and above max_norm
        grads = {k: v * scale for k, v in _grad_seq(1)[0].items()}
        ts = [torch.from_numpy(v.copy()).requires_grad_() for v in grads.values()]
        for t, v in zip(ts, grads.values()):
            t.grad = torch.from_numpy(v.copy())
        total = optim.clip_grad_norm(grads, 1.0, norm_type=norm_type)
        ttotal = torch.nn.utils.clip_grad_norm_(ts, 1.0, norm_type=norm_type)
        np.testing.assert_allclose(total, ttotal.item(), rtol=1e-12)
        for t, v in zip(ts, grads.values()):
            np.testing.assert_allclose(v, t.grad.numpy(), rtol=1e-12)
    norm = math.sqrt(sum(float((g ** 2).sum()) for g in grads.values()))
    if norm_type == 2.0:
        assert norm == pytest.approx(1.0, rel=1e-5)


def _torch_sched(torch, name, kw):
    p = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([p], lr=0.5)
    return topt, getattr(torch.optim.lr_scheduler, name)(topt, **kw)


@pytest.mark.parametrize("name,kw", [("StepLR", dict(step_size=3, gamma=0.5)),
                                     ("CosineAnnealingLR", dict(T_max=7, eta_min=0.01)),
                                     ("CosineAnnealingLR", dict(T_max=4))])
def test_schedules_match_torch(name, kw):
    torch = pytest.importorskip("torch")
    topt, tsched = _torch_sched(torch, name, kw)
    opt = optim.SGD(_params(), lr=0.5)
    sched = getattr(optim, name)(opt, **kw)
    lrs, tlrs = [], []
    for epoch in range(20):  # past T_max: torch's cosine keeps going periodically
        opt.step(_grad_seq(1)[0])
        topt.step()
        sched.step()
        tsched.step()
        lrs.append(opt.lr)
        tlrs.append(topt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, tlrs, rtol=1e-12, atol=1e-15)
    assert len(set(np.round(lrs, 12))) > 2


def test_reduce_on_plateau_matches_torch():
    torch = pytest.importorskip("torch")
    kw = dict(factor=0.5, patience=2, threshold=0.01, cooldown=1, min_lr=0.01)
    topt, tsched = _torch_sched(torch, "ReduceLROnPlateau", kw)
    opt = optim.SGD(_params(), lr=0.5)
    sched = optim.ReduceLROnPlateau(opt, **kw)
    metrics = [1.0, 0.9, 0.95, 0.9, 0.899, 0.91, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
    lrs, tlrs = [], []
    for m in metrics:
        sched.step(m)
        tsched.step(m)
        lrs.append(opt.lr)
        tlrs.append(topt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, tlrs, rtol=1e-15)
    assert lrs[-1] < 0.5


def test_scheduler_state_round_trip_is_json_and_resumes():
    import json
    opt = optim.SGD(_params(), lr=0.5)
    sched = optim.ReduceLROnPlateau(opt, patience=1)
    for m in [1.0, 2.0, 3.0]:
        sched.step(m)
    sd = json.loads(json.dumps(sched.state_dict()))
    opt2 = optim.SGD(_params(), lr=opt.lr)
    sched2 = optim.ReduceLROnPlateau(opt2)
    sched2.load_state_dict(sd)
    for m in [3.0, 3.0, 3.0, 0.1]:
        sched.step(m)
        sched2.step(m)
        assert opt.lr == opt2.lr
    c = optim.CosineAnnealingLR(opt, T_max=5)
    c.step()
    c2 = optim.CosineAnnealingLR(optim.SGD(_params(), lr=opt.lr), T_max=99)
    c2.load_state_dict(json.loads(json.dumps(c.state_dict())))
    assert c2.T_max == 5 and c2.last_epoch == 1
    with pytest.raises(ValueError, match="state"):
        c2.load_state_dict(sd)


def test_bad_arguments_name_the_argument():
    p = _params()
    with pytest.raises(ValueError, match="lr"):
        optim.SGD(p, lr=-1)
    with pytest.raises(TypeError, match="lr"):
        optim.Adam(p, lr="fast")
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(p, betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="betas"):
        optim.AdamW(p, betas=0.9)
    with pytest.raises(TypeError, match="params"):
        optim.RMSprop([np.zeros(3)])
    with pytest.raises(TypeError, match="params"):
        optim.SGD({"a": np.zeros(3, np.int64)})
    o = optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="grads"):
        o.step({"nope": np.zeros(3)})
    with pytest.raises(ValueError, match=r"grads\['w'\]"):
        o.step({"w": np.zeros(3)})
    with pytest.raises(TypeError, match="grads"):
        o.step([np.zeros(3)])
    with pytest.raises(ValueError, match="max_norm"):
        optim.clip_grad_norm({"w": np.zeros(3)}, -1.0)
    with pytest.raises(ValueError, match="norm_type"):
        optim.clip_grad_norm({"w": np.zeros(3)}, 1.0, norm_type=1)
    with pytest.raises(TypeError, match="optimizer"):
        optim.StepLR("opt", 2)
    with pytest.raises(ValueError, match="step_size"):
        optim.StepLR(o, 0)
    with pytest.raises(ValueError, match="factor"):
        optim.ReduceLROnPlateau(o, factor=1.5)
    with pytest.raises(ValueError, match="mode"):
        optim.ReduceLROnPlateau(o, mode="up")
    with pytest.raises(TypeError, match="metric"):
        optim.ReduceLROnPlateau(o).step("low")
    # accepted once, and the first step turned the parameters into NaN
    with pytest.raises(ValueError, match="eps must be > 0"):
        optim.Adam(p, eps=0.0)
    with pytest.raises(ValueError, match="eps must be > 0"):
        optim.RMSprop(p, eps=0.0)
    with pytest.raises(ValueError, match="alpha must be <= 1"):
        optim.RMSprop(p, alpha=2.0)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_skipped_parameters_match_torch(name):
    """A None gradient skips a parameter without advancing its step count, as torch does
    (regression: Adam used one global count, so a parameter that skipped step 1 got the bias
    correction of step 2 at its first update)."""
    torch = pytest.importorskip("torch")
    kw = dict(lr=0.1, momentum=0.9) if name in ("SGD", "RMSprop") else dict(lr=0.1)
    params = _params()
    tparams = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in params.items()}
    opt = getattr(optim, name)(params, **kw)
    topt = getattr(torch.optim, name)(list(tparams.values()), **kw)
    seq = _grad_seq(5)
    seq[0]["b"] = seq[1]["b"] = seq[3]["w"] = None
    for i, grads in enumerate(seq):
        if i == 2:  # the per-parameter counts survive a state round trip
            sd = opt.state_dict()
            opt = getattr(optim, name)(params, **kw)
            opt.load_state_dict(sd)
        opt.step(grads)
        for k, t in tparams.items():
            t.grad = None if grads[k] is None else torch.from_numpy(grads[k].copy())
        topt.step()
        for k in params:
            np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), rtol=1e-12, atol=1e-12,
                                       err_msg=f"{name} step {i} {k}")


def test_state_without_per_parameter_steps_still_loads():
    """State dicts written before Adam kept per-parameter counts resume as if all had stepped."""
    o = optim.Adam(_params(), lr=0.1)
    for g in _grad_seq(3):
        o.step(g)
    sd = o.state_dict()
    for bufs in sd["state"].values():
        assert bufs.pop("step") == 3
    o2 = optim.Adam(_params(), lr=0.1)
    o2.load_state_dict(sd)
    assert all(s["step"] == 3 for s in o2.state.values())


def test_load_state_dict_validates_what_it_restores():
    """Regression: hyper-parameters were setattr'd unchecked, so a damaged checkpoint failed
    later inside step() with an error naming nothing."""
    o = optim.SGD(_params(), lr=0.1, momentum=0.9)
    o.step(_grad_seq(1)[0])
    good = o.state_dict()

    def bad(**changes):
        sd = {**good, **changes}
        return lambda: optim.SGD(_params(), lr=0.1).load_state_dict(sd)

    for call, exc, name in [
        (bad(hyperparams={**good["hyperparams"], "momentum": "x"}), TypeError, "momentum"),
        (bad(hyperparams={**good["hyperparams"], "lr": -1.0}), ValueError, "lr"),
        (bad(hyperparams={**good["hyperparams"], "warp": 9}), ValueError, "warp"),
        (bad(hyperparams=[0.1]), ValueError, "hyperparams"),
        (bad(step=-1), ValueError, "step"),
        (bad(state={"w": {"momentum_buffer": np.array(["a"] * 12).reshape(4, 3)}, "b": {}}),
         TypeError, "momentum_buffer"),
        (bad(state={"w": [1], "b": {}}), ValueError, "state"),
    ]:
        with pytest.raises(exc, match=name):
            call()
    a = optim.Adam(_params(), lr=0.1)
    a.step(_grad_seq(1)[0])
    sd = a.state_dict()
    sd["state"]["w"]["step"] = -2
    with pytest.raises(ValueError, match="step"):
        optim.Adam(_params()).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"state\['state'\]"):     # was: 'int' not iterable
        optim.SGD(_params(), lr=0.1).load_state_dict({**good, "state": 5})


@pytest.mark.parametrize("name,kw,drop", [
    ("Adam", {}, "exp_avg_sq"), ("AdamW", {}, "exp_avg"),
    ("RMSprop", dict(momentum=0.9), "momentum_buffer"),
    ("RMSprop", dict(centered=True), "grad_avg"),
    ("RMSprop", dict(momentum=0.9), "square_avg")])
def test_load_state_dict_refuses_a_stepped_parameter_missing_a_buffer(name, kw, drop):
    """Regression: the state loaded, and the next step() died with KeyError naming the buffer."""
    o = getattr(optim, name)(_params(), lr=0.1, **kw)
    o.step(_grad_seq(1)[0])
    sd = o.state_dict()
    del sd["state"]["w"][drop]
    o2 = getattr(optim, name)(_params(), lr=0.1, **kw)
    with pytest.raises(ValueError, match=rf"state\['state'\]\['w'\] is missing buffers \['{drop}'\]"):
        o2.load_state_dict(sd)


def test_grads_must_be_float_arrays():
    o = optim.SGD(_params(), lr=0.1)
    with pytest.raises(TypeError, match=r"grads\['w'\]"):
        o.step({"w": np.ones((4, 3), np.int64)})
    with pytest.raises(TypeError, match=r"grads\['w'\]"):
        optim.clip_grad_norm({"w": np.array(["a"])}, 1.0)
    ro = np.full(3, 10.0)
    ro.flags.writeable = False              # was numpy's "output array is read-only"
    with pytest.raises(ValueError, match=r"grads\['w'\] must be writeable"):
        optim.clip_grad_norm({"w": ro}, 1.0)


@pytest.mark.parametrize("metric", [math.inf, -math.inf, math.nan])
def test_reduce_on_plateau_refuses_non_finite_metrics(metric):
    """Regression: an infinite metric became `best`, so state_dict() held Infinity (not JSON)
    and load_state_dict refused its own output ('best must be finite')."""
    sched = optim.ReduceLROnPlateau(optim.SGD(_params(), lr=0.5))
    with pytest.raises(ValueError, match="metric must be finite"):
        sched.step(metric)
    assert sched.best is None and sched.last_epoch == 0


def test_scheduler_load_state_dict_validates_values():
    """Regression: scheduler state was setattr'd unchecked (a step_size of 0 only failed later
    with ZeroDivisionError)."""
    opt = optim.SGD(_params(), lr=0.5)
    good = optim.StepLR(opt, 2).state_dict()
    for k, v, exc in [("step_size", 0, ValueError), ("gamma", "x", TypeError),
                      ("base_lr", -1.0, ValueError), ("last_epoch", 1.5, TypeError)]:
        with pytest.raises(exc, match=k):
            optim.StepLR(opt, 2).load_state_dict({**good, k: v})
    with pytest.raises(ValueError, match="gamma"):
        optim.StepLR(opt, 2).load_state_dict({k: v for k, v in good.items() if k != "gamma"})
    plateau = optim.ReduceLROnPlateau(opt).state_dict()
    with pytest.raises(ValueError, match="num_bad_epochs"):
        optim.ReduceLROnPlateau(opt).load_state_dict({**plateau, "num_bad_epochs": -1})
    with pytest.raises(ValueError, match="mode"):
        optim.ReduceLROnPlateau(opt).load_state_dict({**plateau, "mode": "sideways"})
    assert opt.lr == 0.5  # validating never touched the optimizer


def test_an_array_listed_under_two_names_is_refused():
    """Regression: it was updated twice per step."""
    a = np.ones(3)
    with pytest.raises(ValueError, match="shares memory"):
        optim.SGD({"a": a, "b": a}, lr=1.0)
    with pytest.raises(ValueError, match="shares memory"):
        optim.Adam({"a": a, "b": a[1:]}, lr=1.0)
    optim.SGD({"a": a, "b": np.ones(3)}, lr=1.0)        # equal values, separate memory: fine


@pytest.mark.parametrize("bad", [{"last_epoch": -1}, {"base_lr": float("nan")},
                                 {"num_bad_epochs": -2}, {"best": "low"}])
def test_a_refused_scheduler_state_changes_nothing(bad):
    """Settings were set before base_lr, last_epoch and the counters were checked: a refused
    state left the scheduler half-restored (here factor and patience of another run)."""
    opt = optim.SGD({"w": np.zeros(2)}, lr=0.1)
    s = optim.ReduceLROnPlateau(opt, factor=0.5, patience=3)
    for m in (3.0, 2.0, 2.5):
        s.step(m)
    before = s.state_dict()
    other = optim.ReduceLROnPlateau(optim.SGD({"w": np.zeros(2)}, lr=1.0), factor=0.2,
                                    patience=7, cooldown=4).state_dict()
    with pytest.raises((ValueError, TypeError)):
        s.load_state_dict(other | bad)
    assert s.state_dict() == before
