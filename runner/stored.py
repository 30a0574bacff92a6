"""A checkpoint's stored run config, checked before an evaluation or a resume builds anything
from it: a checkpoint is a file anyone can hand over (README, "Evaluate, resume, reproduce").

    saved_config(meta, path)        the runner's config in a checkpoint's metadata, or {}
    check_data(node, target, path)  its data config: a dataset class in plain values, typed
                                    by the dataset's schema (what ckpt_path= builds)
    typed_resume_data(meta, path)   the same typing for resume=, before its comparison
"""
import dataclasses
import inspect
import typing

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runner import datasets, schema
from runner.config import ConfigError


def saved_config(meta: dict, path) -> dict:
    """The run config a runner checkpoint stores; none for one saved by grucy itself,
    whose metadata is its author's own: a ``"config"`` there (a string, say) is not the
    runner's, and it failed inside tasks.evaluated_config with a ValueError and traceback.txt."""
    if not meta.get("runner"):
        return {}
    saved = meta.get("config")
    if not isinstance(saved, dict) or not all(isinstance(saved.get(k, {}), dict)
                                              for k in ("data", "model", "trainer")):
        raise ConfigError(f"ckpt_path={path}: the run config stored in it is not a mapping of "
                          "settings with data, model and trainer sections (a damaged checkpoint?)")
    _refuse_unreadable(saved, "", f"ckpt_path={path}")
    return saved


def _refuse_unreadable(tree, key, where) -> None:
    """Refuse a string in a checkpoint's stored config ``tree`` that OmegaConf cannot read,
    naming its key: "x${" opens an interpolation and closes none, and OmegaConf.create of
    the config ended an evaluation (a resume too, once it typed the stored data) in a bare
    GrammarParseError and traceback.txt. The runner stores its values resolved: none of its
    own holds one. ``key``: tree's own, "" at the top."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            _refuse_unreadable(v, f"{key}.{k}" if key else str(k), where)
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            _refuse_unreadable(v, f"{key}[{i}]", where)
    elif isinstance(tree, str) and "${" in tree:
        try:
            OmegaConf.create({"value": tree})
        except OmegaConfBaseException:
            raise ConfigError(f"{where}: the checkpoint's {key}={tree!r:.80} opens an "
                              "interpolation (\"${\") that OmegaConf cannot read; the file is "
                              "damaged or was not written by the runner") from None


# The schema each built-in dataset's options are typed by (conf/data/*.yaml); elnino's is csv's
DATA_SCHEMAS = {datasets.Sine: schema.SineConfig, datasets.MackeyGlass: schema.MackeyGlassConfig,
                datasets.CSVSeries: schema.CSVConfig, datasets.ElNino: schema.CSVConfig,
                datasets.Adding: schema.AddingConfig}


def check_data(node, target, path) -> DictConfig:
    """Refuse a checkpoint's data config that names anything but a dataset class, or that
    gives a built-in dataset a value its schema does not take; return it typed.

    An evaluation builds the data its checkpoint's config names, with Hydra: a forged
    checkpoint naming ``builtins.open`` with ``mode: w`` truncated a file, ``numpy.load``
    with ``allow_pickle`` ran a pickle, before anything checked for a ``load()``. So the
    target must be a class with a load() method, and the config plain values: no other
    ``_key_`` of Hydra's and no nested ``_target_``, which it would build too. (A run's own
    command line is the user's; this is for what a file brings.) ``target``: node's
    ``_target_``, as check_target imported it.
    """
    if not (inspect.isclass(target) and callable(getattr(target, "load", None))):
        raise ConfigError(f"ckpt_path={path}: the checkpoint's data._target_={node._target_!r} is "
                          "not a dataset class (one with a load() method); not building it")
    stack = [(k, v) for k, v in OmegaConf.to_container(node, resolve=False).items()
             if k != "_target_"]
    while stack:
        key, value = stack.pop()
        if isinstance(key, str) and key.startswith("_") and key.endswith("_"):
            raise ConfigError(f"ckpt_path={path}: the checkpoint's data config holds {key!r}, "
                              "which would make Hydra build or call something; a dataset "
                              "takes plain values")
        if isinstance(value, dict):
            stack.extend(value.items())
        elif isinstance(value, list):
            stack.extend((None, v) for v in value)
    return _typed_stored_data(node, DATA_SCHEMAS.get(target), f"ckpt_path={path}")


def typed_resume_data(meta, path) -> None:
    """A resume's stored data config, in ``meta``, typed as an evaluation's is: compared as
    it stood, a hand-edited window of "8" differed from the command line's 8, and "eight"
    was answered with "pass the same overrides as the original run", which none can."""
    config = meta.get("config") if meta.get("runner") else None
    data = config.get("data") if isinstance(config, dict) else None
    if not isinstance(data, dict):
        return          # trainer.check_resume names what is missing
    named = {f"{c.__module__}.{c.__qualname__}": s for c, s in DATA_SCHEMAS.items()}
    target = data.get("_target_")
    typed_by = named.get(target) if isinstance(target, str) else None    # a list is unhashable
    if typed_by is not None:
        _refuse_unreadable(data, "data", f"resume={path}")
        typed = _typed_stored_data(OmegaConf.create(data), typed_by, f"resume={path}")
        config["data"] = OmegaConf.to_container(typed, resolve=False)


def _typed_stored_data(node, typed_by, where) -> DictConfig:
    """``node``, a built-in dataset's stored config, with its values typed by the schema
    ``typed_by`` as the command line's are (window "8" is 8); None: a user's own dataset,
    whose class checks its values. ``where``: the checkpoint, as ``ckpt_path=...``.

    A hand-edited data.window of "eight" reached the dataset, and an evaluation ended in a
    bare TypeError and traceback.txt. Only the stored keys are kept: a key the checkpoint
    lacks (a run from before it existed) gets the dataset class's default as before, and a
    key the schema lacks is left to what named it before (an evaluation's check_target, a
    resume's comparison), so the schema is merged with struct off.
    """
    if typed_by is None:
        return node
    stored = OmegaConf.to_container(node, resolve=False)
    base = OmegaConf.structured(typed_by)
    OmegaConf.set_struct(base, False)
    fields = {f.name: f.type for f in dataclasses.fields(typed_by)}
    for key, value in stored.items():
        if key not in fields:
            continue
        if fields[key] is int and isinstance(value, float) and value.is_integer():
            # the runner's own: a data YAML of the user's naming a built-in class has no
            # schema, and its length: 2e3 or window: 8.0 trained, the classes taking int() of
            # them; the schema alone refused the evaluation and the resume of its checkpoints
            value = stored[key] = int(value)
        if _interpolated(node, key):
            raise ConfigError(f"{where}: the checkpoint's data.{key}={value!r:.80} is an "
                              f"interpolation, not {_type_words(fields[key])} (the runner "
                              "stores its values resolved); the file is damaged or was not "
                              "written by the runner")
        try:
            # one key at a time: OmegaConf's error names no key for some values (a mapping
            # given for a list). "???" is OmegaConf's missing value: a merge keeps the
            # default under it, and the dataset's default stood in for the run's own value;
            # an item of a list (data.inputs) is kept as missing, and building the dataset
            # ended in a bare MissingMandatoryValue
            if value == MISSING or (isinstance(value, list) and MISSING in value):
                raise ValueError(value)
            OmegaConf.merge(base, {key: value})
        except (OmegaConfBaseException, ValueError):
            raise ConfigError(f"{where}: the checkpoint's data.{key}={value!r:.80} is not "
                              f"{_type_words(fields[key])}; the file is damaged or was not "
                              "written by the runner") from None
    typed = OmegaConf.to_container(OmegaConf.merge(base, stored), resolve=False)
    return OmegaConf.create({k: typed[k] for k in stored})


def _interpolated(node, key) -> bool:
    """Whether ``node[key]``, or an item of it, is an interpolation ("${oc.env:HOME}").

    The merge keeps one as it is, for any type, and it was resolved only when the dataset
    was built: a hand-edited window of "${oc.env:HOME}" reached it as a path string, and the
    evaluation ended in the bare TypeError the typing is there to prevent."""
    if OmegaConf.is_interpolation(node, key):
        return True
    value = node._get_node(key)
    return isinstance(value, ListConfig) and any(OmegaConf.is_interpolation(value, i)
                                                 for i in range(len(value)))


def _type_words(annotation) -> str:
    """A schema field's type in words: Optional[float] -> 'a number or null'."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Union:
        return f"{_type_words(args[0])} or null"
    if typing.get_origin(annotation) is list:
        return f"a list of {_type_words(args[0]).split(' ', 1)[1]}s"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))
