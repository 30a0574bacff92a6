"""Every config option composes and instantiates; bad configs fail early in one line."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf.errors import ConfigKeyError, ValidationError

from runner import model as M
from runner.config import ConfigError, check_target, config_dir, validate
from runner.testing import TINY, compose

CONF = Path(config_dir())


def options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_config_dir_is_the_repo_conf():
    assert (CONF / "config.yaml").is_file()
    for group in ("model", "data", "optimizer", "scheduler", "experiment", "hparams_search"):
        assert (CONF / group).is_dir(), group


def test_an_installed_runner_reads_its_own_configs_first(tmp_path, monkeypatch):
    # installed, runner/ sits in site-packages, whose conf/ (beside it, where a checkout keeps
    # its configs) may be any other package's: the package's own runner/conf comes first
    import runner.config as rc
    for d in (tmp_path / "conf", tmp_path / "runner" / "conf"):
        d.mkdir(parents=True)
        (d / "config.yaml").write_text("x: 1\n")
    monkeypatch.setattr(rc, "PACKAGE_DIR", tmp_path / "runner")
    assert rc.config_dir() == str(tmp_path / "runner" / "conf")
    (tmp_path / "runner" / "conf" / "config.yaml").unlink()              # a checkout
    assert rc.config_dir() == str(tmp_path / "conf")


def test_default_config_is_gru_on_sine():
    cfg = compose(["name=t"])
    assert cfg.model._target_.endswith("SequenceModel")
    assert cfg.data._target_ == "runner.datasets.Sine"
    validate(cfg)


@pytest.mark.parametrize("name", options("data"))
def test_every_data_option_instantiates(name):
    extra = ["data.path=x.csv", "data.column=v"] if name == "csv" else TINY.get(name, [])
    cfg = compose([f"data={name}", "name=t"] + extra)
    check_target(cfg.data, "data")
    ds = instantiate(cfg.data)
    if name == "csv":
        return  # needs a real file: tests/test_runner_data.py
    data = ds.load()
    assert len(data.train) and len(data.val) and len(data.test)
    assert data.train.x.dtype == np.float32


@pytest.mark.parametrize("name", options("model"))
def test_every_model_option_instantiates(name):
    cfg = compose([f"model={name}", "name=t"])
    validate(cfg)
    model = M.build_model(cfg.model, input_size=3, output_size=2, seed=0)
    y = model.forward(np.zeros((5, 4, 3), np.float32))
    assert y.shape == (4, 2)


@pytest.mark.parametrize("name", options("optimizer"))
def test_every_optimizer_option_instantiates(name):
    cfg = compose([f"optimizer={name}", "name=t"])
    model = M.build_model(cfg.model, 1, 1, seed=0)
    opt = M.build_optimizer(cfg.optimizer, model)
    assert M.get_lr(opt) == pytest.approx(cfg.optimizer.lr)
    opt.step(model.gradients())


@pytest.mark.parametrize("name", options("scheduler"))
def test_every_scheduler_option_instantiates(name):
    cfg = compose([f"scheduler={name}", "name=t"])
    model = M.build_model(cfg.model, 1, 1, seed=0)
    opt = M.build_optimizer(cfg.optimizer, model)
    sched = M.build_scheduler(cfg.get("scheduler"), opt)
    assert (sched is None) == (name == "none")
    M.scheduler_step(sched, 1.0)


def test_a_scheduler_without_state_dict_is_restored_by_replaying_the_epochs():
    """On resume a user's scheduler that has no state_dict is brought back by stepping it once
    per finished epoch, a plateau-like one with that epoch's validation loss; left unstepped,
    it restarted its schedule from epoch 0."""
    class Plain:
        def __init__(self):
            self.calls = []

        def step(self):
            self.calls.append(None)

    class OnMetric(Plain):
        def step(self, metric):
            self.calls.append(metric)

    class WithEpoch(Plain):
        # torch's own schedulers: step(epoch=None), an optional argument that is no metric;
        # given the validation loss it would jump the schedule to "epoch 0.9"
        def step(self, epoch=None):
            self.calls.append(epoch)

    plain, on_metric, with_epoch = Plain(), OnMetric(), WithEpoch()
    M.load_scheduler_state(plain, None, [0.9, 0.7, 0.8])
    M.load_scheduler_state(on_metric, None, [0.9, 0.7, 0.8])
    M.load_scheduler_state(with_epoch, None, [0.9, 0.7, 0.8])
    assert plain.calls == [None, None, None]
    assert on_metric.calls == [0.9, 0.7, 0.8]
    assert with_epoch.calls == [None, None, None]


def test_checkpoint_metadata_with_numpy_scalars_is_stored_as_plain_numbers(tmp_path):
    """The runner's checkpoint metadata may hold numpy values (a float32 loss, an int64
    count, an array): grucy.io.save takes JSON types only, so the runner converts them."""
    import grucy
    path = tmp_path / "m.npz"
    meta = {"val": np.float32(0.5), "epoch": np.int64(3), "curve": np.array([1.0, 2.0]),
            "nested": [{"k": np.float64(0.25)}]}
    M.save_checkpoint(path, grucy.SequenceModel(1, 2, 1, seed=0), metadata=meta)
    got = M.load_checkpoint(path)[2]
    assert got == {"val": 0.5, "epoch": 3, "curve": [1.0, 2.0], "nested": [{"k": 0.25}]}
    assert type(got["epoch"]) is int             # a count stays a whole number, not 3.0


@pytest.mark.parametrize("name", options("experiment"))
def test_every_experiment_composes(name):
    cfg = compose([f"experiment={name}"])
    validate(cfg)
    text = (CONF / "experiment" / f"{name}.yaml").read_text()
    assert "python -m runner" in text.split("defaults:")[0], "header must give the command"


@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None,
                    reason="optuna extra not installed")
@pytest.mark.parametrize("name", options("hparams_search"))
def test_every_hparams_search_composes(name):
    cfg = compose([f"hparams_search={name}"], return_hydra_config=True)
    assert "optuna" in cfg.hydra.sweeper._target_.lower()
    assert cfg.hydra.sweeper.params


@pytest.mark.parametrize("launcher", ["basic", "joblib", "submitit_local", "submitit_slurm", "slurm"])
def test_launcher_configs_compose(launcher):
    if launcher != "basic":
        pytest.importorskip("hydra_plugins.hydra_joblib_launcher" if launcher == "joblib"
                            else "hydra_plugins.hydra_submitit_launcher")
    cfg = compose([f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_
    if launcher == "slurm":
        assert cfg.hydra.launcher.cpus_per_task == 2


@pytest.mark.parametrize("override, needle", [
    ("model.hiden_size=3", "hiden_size"),
    ("trainer.epoch=3", "epoch"),
    ("data.frequncy=0.1", "frequncy"),
])
def test_misspelt_key_is_rejected_at_composition(override, needle):
    with pytest.raises((ConfigCompositionException, ConfigKeyError)) as err:
        compose([override])
    assert needle in str(err.value) + str(err.value.__cause__)


@pytest.mark.parametrize("override", ["model.hidden_size=abc", "trainer.epochs=1.5",
                                      "optimizer.lr=fast", "seed=x", "quiet=maybe"])
def test_wrong_type_is_rejected_at_composition(override):
    with pytest.raises((ConfigCompositionException, ValidationError)):
        compose([override])


def test_validate_rejects_bad_values():
    with pytest.raises(ConfigError, match="trainer.loss"):
        validate(compose(["trainer.loss=huber", "name=t"]))
    with pytest.raises(ConfigError, match="trainer.epochs"):
        validate(compose(["trainer.epochs=0", "name=t"]))
    for key in ("batch_size", "eval_batch_size"):    # 0 failed later in range() or numpy
        with pytest.raises(ConfigError, match=rf"^trainer.{key}=0: must be at least 1"):
            validate(compose([f"trainer.{key}=0", "name=t"]))
    with pytest.raises(ConfigError, match=r"^threads=0: must be at least 1"):
        validate(compose(["threads=0", "name=t"]))
    validate(compose(["trainer.batch_size=1", "trainer.eval_batch_size=1", "threads=1", "name=t"]))
    with pytest.raises(ConfigError, match="ckpt_path"):
        validate(compose(["train=false", "name=t"]))
    with pytest.raises(ConfigError, match=r"^ckpt_path=x.npz is read only with train=false"):
        validate(compose(["ckpt_path=x.npz", "name=t"]))     # training ignored it silently
    with pytest.raises(ConfigError, match=r"data.column, data.path are required"):
        validate(compose(["data=csv", "name=t"]))
    # an evaluation takes the data keys from its checkpoint, but no other missing key; the
    # command line's data option is not the one it loads, so its target is not checked
    evaluation = ["train=false", "ckpt_path=x.npz", "data=csv", "name=t"]
    validate(compose(evaluation))
    validate(compose(evaluation + ["data._target_=nope.Nope"]))
    with pytest.raises(ConfigError, match=r"^data._target_='nope.Nope' cannot be imported"):
        validate(compose(["data._target_=nope.Nope", "name=t"]))
    with pytest.raises(ConfigError, match=r"^model.hidden_size is required \(no default\)"):
        validate(compose(evaluation + ["model.hidden_size=???"]))
    with pytest.raises(ConfigError, match=r"^resume=runs/a trains on from a run, and train=false"):
        validate(compose(["train=false", "ckpt_path=x.npz", "resume=runs/a", "name=t"]))   # was ignored


@pytest.mark.parametrize("override", ["name=", "name=''", "name='  '"])
def test_an_empty_name_is_refused(override):
    # it left out the directory level: the run was written straight into outputs/<date_time>
    with pytest.raises(ConfigError, match=r"^name='\s*': must be a non-empty label"):
        validate(compose([override]))
    validate(compose(["name=mine"]))


def test_dropout_on_a_single_layer_is_refused():
    # grucy applies dropout between stacked layers only: on one layer it did nothing
    with pytest.raises(ConfigError, match=r"^model.dropout=0.5: .*no effect with model.num_layers=1"):
        validate(compose(["model.dropout=0.5", "name=t"]))
    validate(compose(["model.dropout=0.5", "model.num_layers=2", "name=t"]))
    validate(compose(["model=bigru", "model.dropout=0.3", "name=t"]))


def test_validate_rejects_a_negative_seed():
    # it failed later inside grucy ("seed must be >= 0") with a traceback.txt
    with pytest.raises(ConfigError, match=r"^seed=-1: must be >= 0"):
        validate(compose(["seed=-1", "name=t"]))
    validate(compose(["seed=0", "name=t"]))


@pytest.mark.parametrize("override", ["trainer.early_stopping.patience=0", "trainer.early_stopping.patience=-1",
                                      "trainer.stop_after=0", "trainer.stop_after=-2",
                                      "trainer.early_stopping.min_delta=-0.1",
                                      "trainer.clip_grad_norm=-1", "trainer.clip_grad_norm=0",
                                      # inf failed inside grucy with a traceback; min_delta=nan
                                      # counted no epoch as better, so no best.npz was written
                                      "trainer.clip_grad_norm=inf", "trainer.early_stopping.min_delta=nan",
                                      "trainer.early_stopping.min_delta=inf",
                                      "trainer.clip_grad_value=-1", "trainer.clip_grad_value=0",
                                      "trainer.clip_grad_value=inf", "trainer.clip_grad_value=nan"])
def test_validate_rejects_bad_trainer_values(override):
    # patience/stop_after < 1 trained nothing and reported the untrained model with status ok;
    # clip_grad_norm=-1 failed later as 'max_norm must be >= 0.0', a name not in the config
    with pytest.raises(ConfigError, match=override.split("=")[0].replace(".", r"\.")):
        validate(compose([override, "name=t"]))


@pytest.mark.parametrize("override, match", [
    ("+trainer.epoch=3", r"^trainer.epoch: unknown setting \(known: batch_size, "),
    ("+trainer.early_stopping.patiense=2", r"^trainer.early_stopping.patiense: unknown"),
    ("+lr=0.1", r"^lr: unknown setting"),
])
def test_keys_added_past_the_schema_are_rejected(override, match):
    # Hydra's hint for a misspelt key is to add it with '+', which skips the schema
    with pytest.raises(ConfigError, match=match):
        validate(compose([override, "name=t"]))


def test_check_target_catches_typos_in_user_options():
    from omegaconf import OmegaConf
    node = OmegaConf.create({"_target_": "runner.datasets.Sine", "lenght": 10})
    with pytest.raises(ConfigError, match=r"data.lenght: .*allowed: .*length"):
        check_target(node, "data")
    # only Hydra's own _keys_ are skipped, not any key that starts or ends with "_"
    for key in ("length_", "_length"):
        with pytest.raises(ConfigError, match=rf"data.{key}: .*takes no argument"):
            check_target(OmegaConf.create({"_target_": "runner.datasets.Sine", key: 10}), "data")
    node = OmegaConf.create({"_target_": "no_such_module.Thing"})
    with pytest.raises(ConfigError, match="cannot be imported: module 'no_such_module' cannot be "
                                          "imported \\(ModuleNotFoundError"):
        check_target(node, "data")
    # Hydra's first line alone ended "Error loading 'runner.datasets.Nope':", naming nothing
    node = OmegaConf.create({"_target_": "runner.datasets.Nope"})
    with pytest.raises(ConfigError, match="cannot be imported: module 'runner.datasets' has no 'Nope'$"):
        check_target(node, "data")


def test_an_experiments_settings_on_an_option_without_a_target_say_where_they_came_from():
    # its factor and patience, meant for its plateau scheduler, land on scheduler=none: the
    # error said "no _target_" and nothing of the keys
    with pytest.raises(ConfigError, match=r"^scheduler: no _target_ naming the class to use, though it "
                                          r"sets factor, patience: give the option a _target_ "
                                          r"\(module.Class\), or, if these are an experiment's "
                                          r"settings for another scheduler option, choose that one$"):
        validate(compose(["scheduler=none", "experiment=elnino", "name=t"]))


@pytest.mark.parametrize("override, match", [
    ("+model.seed=5", r"^model.seed: set by the runner, not by the config; remove it \(the run's seed="),
    ("+model.batch_first=true", r"^model.batch_first: set by the runner"),
    ("+model.input_size=3", r"^model.input_size: set by the runner"),
    ("+optimizer.params=5", r"^optimizer.params: set by the runner"),
])
def test_arguments_the_runner_passes_itself_are_refused_in_the_config(override, match):
    # +model.seed=5 was silently overridden by the run's seed; batch_first=true fed
    # time-major batches to a batch-first model; optimizer.params clashed in a TypeError
    with pytest.raises(ConfigError, match=match):
        validate(compose([override, "name=t"]))


def test_the_sdist_and_the_wheel_ship_every_file_they_need(tmp_path):
    # pip install (not -e) installs conf/ as runner/conf and runner/data by pyproject.toml's
    # globs, and an sdist carries what MANIFEST.in names: a config in a deeper folder or a
    # new data file would be silently left out (and tests/conftest.py was, so the tests of
    # an unpacked sdist failed). Built here the setuptools way, an sdist and build_py (a
    # wheel's files less the compiled modules), and compared with git's list of the tree.
    import subprocess
    import sys
    import tarfile
    repo = CONF.parent
    if not (repo / "setup.py").is_file() or not (repo / ".git").exists():
        pytest.skip("needs the git checkout")
    git = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True)
    if git.returncode != 0:
        pytest.skip(f"git ls-files: {git.stderr.strip()}")
    tracked = set(git.stdout.split())
    args = ["-q", "egg_info", "--egg-base", str(tmp_path), "sdist", "-d", str(tmp_path / "dist"),
            "build_py", "-d", str(tmp_path / "lib")]
    # setup.py as written, less Cython: the README's install builds in an isolated
    # environment, so the venv has none, and this needs no C (nor writes any into the tree).
    # cythonize hands the extensions back unchanged, and setuptools' own Cython hook is
    # blocked, as it is where Cython is absent, so both places behave alike
    run_setup = ("import sys, types\n"
                 "build = types.ModuleType('Cython.Build'); build.cythonize = lambda e, **k: e\n"
                 "sys.modules.update({'Cython': types.ModuleType('Cython'), 'Cython.Build': build,"
                 " 'Cython.Distutils': None})\n"
                 f"sys.argv = ['setup.py', *{args!r}]\n"
                 "exec(compile(open('setup.py').read(), 'setup.py', 'exec'))\n")
    r = subprocess.run([sys.executable, "-c", run_setup], cwd=repo, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        files = {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}
    assert tracked - {".ci/run", ".gitignore"} == files & tracked
    # nothing untracked rides along (a benchmark's scratch table, say) but what setuptools
    # makes: the metadata and the C that Cython generates from the .pyx
    assert {f for f in files - tracked if not (f.startswith("grucy/_") and f.endswith(".c"))} \
        == {"PKG-INFO", "setup.cfg"}
    lib = tmp_path / "lib"
    installed = {p.relative_to(lib).as_posix() for p in lib.rglob("*") if p.is_file()}
    needed = {f"runner/{f}" for f in tracked if f.startswith("conf/")} | {
        f for f in tracked if f.startswith(("grucy/", "runner/")) and not f.endswith((".h", ".c"))}
    assert needed == installed


@pytest.fixture
def four_cores(monkeypatch):
    from hydra.core.hydra_config import HydraConfig
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(4)), raising=False)
    yield lambda cfg: HydraConfig.instance().set_config(cfg)
    HydraConfig.instance().cfg = None


@pytest.mark.parametrize("overrides, expected", [
    ([], 4),                                                        # basic launcher: all cores
    (["threads=3"], 3),
    (["model.hidden_size=8"], 1),                                   # small GEMMs: one thread
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], 2),      # 4 cores / 2 jobs
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=3"], 1),
    (["hydra/launcher=joblib"], 1),                                 # n_jobs=-1: a job per core
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=-3"], 2),     # joblib: all cores but 2
    (["hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=3"], 3),
    # submitit_local leaves cpus_per_task unset and starts every job at once: one thread
    # each, not all the cores each
    (["hydra/launcher=submitit_local"], 1),
])
def test_blas_threads_divide_the_cores_among_parallel_jobs(four_cores, overrides, expected):
    from runner.app import choose_threads
    if any("launcher=" in o for o in overrides):
        pytest.importorskip("hydra_plugins.hydra_joblib_launcher" if "joblib" in str(overrides)
                            else "hydra_plugins.hydra_submitit_launcher")
    big = ["model.hidden_size=256", "trainer.batch_size=256"]      # GEMMs worth splitting
    cfg = compose(big + ["name=t"] + overrides, return_hydra_config=True)
    four_cores(cfg)
    assert choose_threads(cfg) == expected


@pytest.mark.parametrize("hidden, batch, expected", [(256, 32, 4), (255, 32, 1), (128, 64, 4), (32, 32, 1)])
def test_one_blas_thread_below_hidden_times_batch_8192(four_cores, hidden, batch, expected):
    # README: one thread for small models, hidden size x batch size below 8192
    from runner.app import choose_threads
    cfg = compose([f"model.hidden_size={hidden}", f"trainer.batch_size={batch}", "name=t"],
                  return_hydra_config=True)
    four_cores(cfg)
    assert choose_threads(cfg) == expected


def test_model_init_may_be_a_dict_of_overrides():
    """grucy.init takes a dict replacing parts of the pytorch scheme; the schema typed init as
    a string, so model.init={weight_hh:orthogonal,bias:1.0} failed in Hydra's merge."""
    cfg = compose(["name=t", "model.init={weight_hh:orthogonal,bias:1.0}"])
    validate(cfg)
    model = M.build_model(cfg.model, input_size=1, output_size=1, seed=0)
    p = model.parameters()
    H = cfg.model.hidden_size
    np.testing.assert_array_equal(p["gru.bias_ih_l0"], 1.0)
    np.testing.assert_array_equal(p["gru.bias_hh_l0"], 1.0)
    for k in range(3):                                  # each gate's block is orthogonal
        w = p["gru.weight_hh_l0"][k * H:(k + 1) * H].astype(np.float64)
        np.testing.assert_allclose(w @ w.T, np.eye(H), atol=1e-5)


def test_model_bias_false_builds_a_gru_without_biases():
    # the schema listed no bias, so model.bias=false was refused as an unknown key
    cfg = compose(["name=t", "model=bigru", "model.bias=false"])
    validate(cfg)
    model = M.build_model(cfg.model, input_size=1, output_size=1, seed=0)
    assert model.gru.bias is False and model.config()["bias"] is False
    assert [k for k in model.parameters() if "bias" in k] == ["head.bias"]
    assert M.build_model(compose(["name=t"]).model, input_size=1, output_size=1, seed=0).gru.bias


def test_the_runners_model_has_a_linear_head():
    # forecasts are normalised values of any size: a squashing output (tanh) could not
    # forecast beyond one training std
    cfg = compose(["name=t"])
    model = M.build_model(cfg.model, input_size=1, output_size=2, seed=0)
    p = model.parameters()
    p["head.weight"][...] = 0.0
    p["head.bias"][...] = [3.0, -7.5]
    y = model.predict(np.zeros((4, 5, 1), np.float32))     # (T, B, I) in, (B, O) out
    np.testing.assert_array_equal(y, np.tile(np.float32([3.0, -7.5]), (5, 1)))


def test_a_user_model_taking_any_keywords_is_asked_for_a_many_to_one_forecaster():
    """A user's model class that takes **kwargs is passed mode="many_to_one" and a linear
    head (activation="identity") with the sizes and seed: the trainer reads (B, O) out.
    SequenceModel's own defaults are these, so it alone cannot tell whether they are passed."""
    from omegaconf import OmegaConf
    node = OmegaConf.create({"_target_": "builtins.dict", "hidden_size": 4})   # takes **kwargs
    built = M.build_model(node, input_size=3, output_size=2, seed=7)
    assert built == {"hidden_size": 4, "input_size": 3, "output_size": 2, "seed": 7,
                     "mode": "many_to_one", "activation": "identity"}


def test_a_user_model_without_a_seed_argument_is_refused_by_name(tmp_path, monkeypatch):
    # the runner passes the run's seed: a class without one failed inside Hydra with a
    # TypeError that named __init__, not the setting; each of the three is asked for
    (tmp_path / "own_models.py").write_text(
        "def no_seed(input_size, output_size, hidden_size=4):\n    return (input_size, output_size)\n"
        "def no_sizes(seed, hidden_size=4):\n    return seed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from omegaconf import OmegaConf
    for target, lacks in (("own_models.no_seed", "seed"), ("own_models.no_sizes", "input_size, output_size")):
        node = OmegaConf.create({"_target_": target, "hidden_size": 4})
        with pytest.raises(ConfigError, match=rf"^model._target_='{target}' takes no {lacks}: the runner"):
            M.build_model(node, input_size=3, output_size=2, seed=7)


def test_a_typo_in_a_scheduler_key_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"^scheduler.step_sise: grucy.optim.StepLR takes no argument"):
        validate(compose(["scheduler=step", "+scheduler.step_sise=3", "name=t"]))


def test_construction_errors_naming_no_config_key_are_left_as_they_are():
    # a ValueError from a user's class that names none of the node's keys is a bug to show
    # as it is, not a ConfigError (nor a KeyError from looking the word up)
    def build():
        raise ValueError("something inside went wrong")
    with pytest.raises(ValueError, match="^something inside went wrong$"):
        M._construct("model", {"hidden_size": 4}, build)


def test_the_runners_sgd_has_the_momentum_the_readme_states():
    # README: the runner's sgd has momentum: 0.9 (the library's SGD defaults to 0)
    cfg = compose(["optimizer=sgd", "name=t"])
    opt = M.build_optimizer(cfg.optimizer, M.build_model(cfg.model, 1, 1, seed=0))
    assert opt.momentum == 0.9


def test_a_model_too_large_for_memory_is_a_config_error_naming_its_sizes():
    # numpy's "Unable to allocate 213. PiB for an array ..." (a MemoryError, wrapped by
    # Hydra's instantiate) named no key and was reported with traceback.txt
    cfg = compose(["model.hidden_size=100000000", "name=t"])
    with pytest.raises(ConfigError) as e:
        M.build_model(cfg.model, input_size=1, output_size=1, seed=0)
    assert str(e.value).startswith("model: too large to build (")
    assert str(e.value).endswith("; reduce model.hidden_size=100000000 or model.num_layers=1")


@pytest.mark.parametrize("group", ["optimizer", "scheduler"])
def test_partial_false_is_refused_naming_the_key(group):
    # Hydra then called the class at once, without params (optimizer) or the optimizer
    # (scheduler): a TypeError and traceback.txt
    ov = ["name=t", f"{group}._partial_=false"] + (["scheduler=step"] if group == "scheduler" else [])
    with pytest.raises(ConfigError, match=rf"^{group}._partial_=False: must be true"):
        validate(compose(ov))


def test_an_optimizer_option_without_partial_is_refused():
    # a user's own option (no schema) that leaves _partial_ out: Hydra calls the class at
    # once as well, so only true passes, not merely "not false"
    from omegaconf import OmegaConf
    cfg = compose(["name=t"])
    OmegaConf.set_struct(cfg, False)
    cfg.optimizer = OmegaConf.create({"_target_": "grucy.optim.SGD", "lr": 0.1})
    with pytest.raises(ConfigError, match=r"^optimizer._partial_=None: must be true"):
        validate(cfg)
    cfg.optimizer._partial_ = True
    validate(cfg)


@pytest.mark.parametrize("node", ["SGDConfig", "AdamConfig", "AdamWConfig", "RMSpropConfig",
                                  "StepLRConfig", "CosineConfig", "LinearLRConfig", "PlateauConfig",
                                  "WarmupCosineConfig"])
def test_optimizer_and_scheduler_schemas_take_every_argument_of_their_class(node):
    # RMSprop's centered, SGD's dampening and the plateau's threshold, threshold_mode,
    # cooldown and eps were left out, so the schema refused valid library arguments
    import dataclasses
    import inspect
    from hydra.utils import get_method
    from runner import schema
    cls = getattr(schema, node)
    fields = {f.name: f.default for f in dataclasses.fields(cls) if f.name not in ("_target_", "_partial_")}
    params = {k: p.default for k, p in inspect.signature(get_method(cls._target_)).parameters.items()
              if k not in ("params", "optimizer")}
    assert set(fields) == set(params)
    # the ones added take the library's defaults (lr, momentum, factor, ... are the runner's own)
    for key in set(fields) & {"centered", "dampening", "mode", "threshold", "threshold_mode", "cooldown", "eps",
                              "amsgrad", "start_factor", "end_factor", "total_iters"}:
        assert fields[key] == params[key], key


def test_the_plateau_scheduler_refuses_mode_max():
    # the runner steps it with the validation loss: mode=max halved the learning rate while
    # the loss improved
    for override in ("scheduler.mode=max", "++scheduler.mode=max"):
        with pytest.raises(ConfigError, match=r"^scheduler.mode='max': the runner steps the plateau "
                                              r"scheduler with the validation loss"):
            validate(compose(["scheduler=plateau", override, "name=t"]))
    validate(compose(["scheduler=plateau", "scheduler.mode=min", "name=t"]))


def test_cosine_annealing_above_the_learning_rate_is_refused():
    # found by a review: eta_min=1.0 over lr=0.01 raised the rate 0.01 -> 0.155 -> 0.505
    with pytest.raises(ConfigError, match=r"^scheduler.eta_min=1.0: above optimizer.lr=0.01, so "
                                          r"cosine annealing would raise the learning rate"):
        validate(compose(["scheduler=cosine", "scheduler.eta_min=1.0", "optimizer.lr=0.01",
                          "name=t"]))
    validate(compose(["scheduler=cosine", "scheduler.eta_min=0.01", "optimizer.lr=0.01", "name=t"]))
    # any amount above: the boundary is lr itself (0.011 over 0.01 still raises the rate)
    with pytest.raises(ConfigError, match=r"^scheduler.eta_min=0.011: above optimizer.lr=0.01"):
        validate(compose(["scheduler=cosine", "scheduler.eta_min=0.011", "optimizer.lr=0.01", "name=t"]))


def test_warmup_cosine_refuses_unknown_keys_and_a_decay_above_the_rate():
    # its schema refuses a typo; one added past it (Hydra's own hint, +key) is refused by
    # the factory's signature, as every option's is
    with pytest.raises(ConfigCompositionException) as err:
        compose(["scheduler=warmup_cosine", "scheduler.warmup=3", "name=t"])
    assert "Key 'warmup' not in 'WarmupCosineConfig'" in str(err.value.__cause__)
    with pytest.raises(ConfigError, match=r"^scheduler.warmup: runner.model.warmup_cosine takes no "
                                          r"argument 'warmup' \(allowed: epochs, eta_min, start_factor, "
                                          r"warmup_epochs\)$"):
        validate(compose(["scheduler=warmup_cosine", "+scheduler.warmup=3", "name=t"]))
    with pytest.raises(ConfigError, match=r"^scheduler.optimizer: set by the runner"):
        validate(compose(["scheduler=warmup_cosine", "+scheduler.optimizer=1", "name=t"]))
    with pytest.raises(ConfigError, match=r"^scheduler.eta_min=1.0: above optimizer.lr=0.01, so "
                                          r"cosine annealing would raise the learning rate"):
        validate(compose(["scheduler=warmup_cosine", "scheduler.eta_min=1.0", "optimizer.lr=0.01",
                          "name=t"]))
    cfg = compose(["scheduler=warmup_cosine", "trainer.epochs=12", "name=t"])
    validate(cfg)
    assert cfg.scheduler.epochs == 12            # the run's length, unless set


@pytest.mark.parametrize("warmup, epochs, message", [
    (0, [], "scheduler.warmup_epochs=0: must be at least 1 and below epochs (4: scheduler.epochs, "
            "by default the run's trainer.epochs)"),
    (4, [], "scheduler.warmup_epochs=4: must be at least 1 and below epochs (4: scheduler.epochs, "
            "by default the run's trainer.epochs)"),
    # scheduler.epochs set apart from trainer.epochs: the message called 5 trainer.epochs's
    (5, ["scheduler.epochs=5"], "scheduler.warmup_epochs=5: must be at least 1 and below "
                                "epochs (5: scheduler.epochs, by default the run's trainer.epochs)"),
])
def test_warmup_cosine_needs_a_warm_up_and_an_epoch_of_decay_named_by_its_key(warmup, epochs,
                                                                             message):
    # LinearLR's and CosineAnnealingLR's own messages named total_iters and T_max, which
    # are no keys of the config
    cfg = compose(["scheduler=warmup_cosine", "trainer.epochs=4", f"scheduler.warmup_epochs={warmup}",
                   "name=t"] + epochs)
    opt = M.build_optimizer(cfg.optimizer, M.build_model(cfg.model, 1, 1, seed=0))
    with pytest.raises(ConfigError) as e:
        M.build_scheduler(cfg.scheduler, opt)
    assert str(e.value).startswith(message), str(e.value)


def test_an_interpolation_that_does_not_resolve_is_refused_in_one_line():
    # OmegaConf's reason can span lines (a YAML parser's, from oc.create): the ConfigError,
    # the run's one line of error, keeps it on one, without OmegaConf's full_key tail
    from omegaconf import OmegaConf
    from runner.config import resolve
    cfg = OmegaConf.create({"a": 1, "k": '${oc.create:"{a: ["}'})
    with pytest.raises(ConfigError) as info:
        resolve(cfg)
    msg = str(info.value)
    assert msg.startswith("k=") and ("cannot be resolved: ParserError raised while resolving "
                                     "interpolation: while parsing a flow node expected the node "
                                     "content") in msg, msg
    assert "\n" not in msg and "full_key" not in msg and msg == msg.strip(), msg
