"""The command line around Hydra: refusals before it runs, hints after it refuses.

Hydra reads the arguments before any runner code runs, and some of its answers are a raw
traceback or advice that does not fit the runner (``argv_error`` answers those first: a
config group set to a non-name, a name leading out of outputs/, a search of no trials,
two modes at once, a run directory that is a file, joblib's n_jobs=0, and a run directory
key that does not resolve; ``grucy_error`` a grucy that cannot be imported); when it has
refused, ``missing_plugin_hint``, ``unknown_key_hint``, ``experiment_hint``,
``quoting_hint``, ``list_hint`` and ``interval_hint`` add a line saying what to install,
which key was meant, which of an experiment's options was replaced, how to quote a value,
that a list is written in brackets or which sweeper takes interval().
``python -m runner`` (runner/__main__.py) calls them.
"""
import contextlib
import difflib
import importlib.metadata
import importlib.util
import io
import re
import shlex
from pathlib import Path

from omegaconf import OmegaConf

from runner.config import config_dir, resolution_reason

# ---- before Hydra reads the arguments ----------------------------------------------------

def argv_error(argv):
    """The message for an argument in ``argv`` that Hydra would mishandle before any runner
    code runs (the module docstring lists them), else None."""
    return (_group_value_error(argv) or _name_error(argv) or _no_trials_error(argv)
            or _hydra_setting_error(argv) or _run_dir_interpolation_error(argv))


def grucy_error(argv, exc):
    """``ImportError: ...`` for ``exc``, the error importing grucy raised (None: it did not),
    when ``argv`` runs something (not ``--help``, ``--cfg``, ...), else None.

    A checkout's grucy/ without compiled modules hides an installed grucy from its root
    (README, "The experiment runner"). Found inside Hydra, the run logged grucy's error and
    then could not write its summary.json, as the runner writes files through grucy.io: a
    traceback, and a run directory with no summary in it.
    """
    if exc is None:
        return None
    args = _hydra_args(argv)
    if args is None or args.help or args.hydra_help or args.cfg or args.info or args.shell_completion:
        return None
    return f"ImportError: {exc}"


def _hydra_args(argv):
    """Hydra's command-line parse of ``argv``, or None where argparse refuses it. Hydra
    has already printed argparse's usage and error for that: silenced here, or each hint
    that parses printed them again."""
    from hydra._internal.utils import get_args_parser
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return get_args_parser().parse_args(argv)
    except BaseException:
        return None


def _group_value_error(argv):
    """The message for a config group set to something other than an option's name in
    ``argv`` (``scheduler=null``, ``scheduler=false``, ``optimizer=1e-3``), else None.

    Hydra refuses these with a raw traceback ("Config group override must be a string or a
    list. Got NoneType", or bool, int, float, dict) that names neither the argument nor
    what to write instead. The value is typed by Hydra's own parser: False, 1_000, inf.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    conf = Path(config_dir())
    parser = None
    for arg in argv:
        m = re.fullmatch(r"\+{0,2}([\w/]+)=(.*)", arg, re.S)
        if not m:
            continue
        group = m.group(1)
        if not (group.startswith("hydra/") or (conf / group).is_dir()):
            continue
        parser = parser or OverridesParser.create()
        try:
            value = parser.parse_override(arg).value()
        except Exception:          # bad syntax: Hydra says so itself, in its own words
            continue
        if not (value is None or isinstance(value, (bool, int, float, dict))):
            continue               # an option's name, a list of them, or a sweep
        given = ("null" if value is None else str(value).lower() if isinstance(value, bool)
                 else "a dict" if isinstance(value, dict) else "a number")
        if group.startswith("hydra/"):
            # Hydra's groups (hydra/launcher, hydra/sweeper, ...) draw options from plugins
            # too, so conf/ cannot list them
            return (f"{arg}: a config group cannot be set to {given} on the command line; "
                    "leave it out for Hydra's default, or name one of its options")
        options = sorted(p.stem for p in (conf / group).glob("*.yaml"))
        if group == "scheduler":
            instead = "scheduler=none is the constant learning rate"
        elif group in ("experiment", "hparams_search"):
            instead = "leave it out: it is off unless chosen"
        else:
            instead = f"choose one of: {', '.join(options)}"
        if given == "a number":
            # optimizer=1e-3 most likely meant one of the group's keys (optimizer.lr=1e-3)
            instead += f" (to set one of its keys: {group}.<key>={m.group(2)})"
        return (f"{arg}: a config group cannot be set to {given} on the command line; "
                f"{instead}")
    return None


def _name_error(argv):
    """``name=../x``: the run directory is outputs/<name>/<date_time>, and Hydra created ./x
    before the runner could check the name (a/b stays under outputs/ and is allowed)."""
    for arg in argv:
        m = re.fullmatch(r"\+{0,2}name=(.*)", arg, re.S)
        if m and ".." in m.group(1).split("/"):
            return (f"{arg}: a run is written to outputs/<name>/<date_time>, and this name leads "
                    "outside outputs/; use hydra.run.dir=DIR for a run directory elsewhere")
    return None


def _no_trials_error(argv):
    """``hydra.sweeper.n_trials=0`` (or less): the Optuna sweeper ran no trial and then
    asked its study for the best one, a traceback ending "No trials are completed yet"."""
    for arg in argv:
        m = re.fullmatch(r"\+{0,2}hydra\.sweeper\.n_trials=\s*([-+]?\d[\d_]*)\s*", arg)
        if m and int(m.group(1)) <= 0:
            return f"{arg}: a search needs at least one trial"
    return None


def _hydra_setting_error(argv):
    """The message for what Hydra or its launcher refuses with a traceback (found by a
    fuzzing pass), else None: two modes at once (``--cfg job -m``), a run or sweep
    directory that is an existing file, joblib's ``n_jobs=0``."""
    args = _hydra_args(argv)
    if args is None:
        return None
    modes = [name for name, on in (("--run", args.run), ("--multirun", args.multirun),
                                   ("--cfg", args.cfg is not None), ("--info", args.info is not None),
                                   ("--shell-completion", args.shell_completion)) if on]
    if len(modes) > 1:         # Hydra's check, as hydra._internal.utils._run_hydra makes it
        return f"{' and '.join(modes)}: give one of them (they are different ways to run)"
    for arg in args.overrides:
        m = re.fullmatch(r"\+{0,2}(hydra\.(?:run|sweep)\.dir)=(.*)", arg, re.S)
        if m and "${" not in m.group(2):
            path = Path(m.group(2).strip("'\"")).expanduser()
            if path.exists() and not path.is_dir():
                return f"{arg}: {path} exists and is not a directory"
        m = re.fullmatch(r"\+{0,2}hydra\.launcher\.n_jobs=\s*0+\s*", arg)
        if m:
            return (f"{arg}: joblib runs n_jobs jobs at once: 1 or more, or -1 for one per "
                    "core (-2 for all cores but one)")
    return None


def _run_dir_interpolation_error(argv):
    """The message for ``name``, ``train`` or ``ckpt_path`` given an interpolation that does
    not resolve (``name=${oc.env:UNSET}``, ``train=${nope}``), else None.

    The run directory is made of them (conf/config.yaml: name), and Hydra resolves it
    before any runner code runs: its error formatting failed on the resolver's exception
    and printed a hundred lines. The config is composed here again (a few tenths of a
    second) only when one of them holds an interpolation.
    """
    keys = [m.group(1) for m in (re.fullmatch(r"\+{0,2}(name|train|ckpt_path)=(.*)", a, re.S)
                                 for a in argv) if m and "${" in m.group(2)]
    if not keys:
        return None
    from omegaconf.errors import OmegaConfBaseException
    try:
        overrides = _bundled_overrides(argv)
        if overrides is None:
            return None
        # a sweep's values each give a config of their own: left out here, as hydra.*
        cfg = _composed([o.input_line for o in overrides if not o.is_sweep_override()
                         and not o.key_or_group.startswith("hydra")])
    except Exception:          # whatever Hydra refuses here, it says itself
        return None
    for key in keys:
        try:
            OmegaConf.select(cfg, key, throw_on_resolution_failure=True)
        except OmegaConfBaseException as exc:
            text = resolution_reason(exc)
            if "hydra" in text.lower():   # ${hydra:...} resolves in a run only: Hydra's
                continue
            raw = OmegaConf.to_container(cfg, resolve=False)[key]
            return f"{key}={raw}: cannot be resolved: {text}"
    return None


# ---- after Hydra has refused them --------------------------------------------------------

OPTUNA_PLUGIN = "hydra_plugins.hydra_optuna_sweeper"


def _asks_for_optuna(argv) -> bool:
    """Whether ``argv`` chooses the Optuna sweeper: a search config, or the sweeper itself."""
    return any(re.match(r"\+{0,2}(hparams_search=(?!null$)|hydra/sweeper=optuna$)", a) for a in argv)


def missing_plugin_hint(argv):
    """What to install when ``argv`` asks for the Optuna sweeper and it is not installed.

    Hydra's own error ("Could not find 'hydra/sweeper/optuna'") does not say that the
    sweeper comes with an extra. None when nothing is missing or nothing asks for it.
    """
    if not _asks_for_optuna(argv):
        return None
    try:
        if importlib.util.find_spec(OPTUNA_PLUGIN) is not None:
            return None
    except ImportError:   # a broken install is as good as none
        pass
    packages = " ".join(shlex.quote(r) for r in extra_requirements("optuna"))
    return ('the Optuna sweeper is not installed: pip install -e ".[optuna]" from a checkout'
            + (f", or its packages: pip install {packages}" if packages else
               " (the optuna extra: hydra-optuna-sweeper, optuna)"))


def extra_requirements(extra) -> list:
    """The requirements of grucy's optional ``extra`` as installed (its metadata), so that a
    hint works for an installed wheel too, with no second list to keep in step; [] where
    grucy's metadata is not installed (a bare checkout on PYTHONPATH)."""
    try:
        requires = importlib.metadata.requires("grucy") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    from packaging.requirements import Requirement   # hydra-core's dependency
    out = []
    for line in requires:
        # the extra's own, by its marker as pip reads it: a requirement that also has a
        # marker of its own (python_version < "3.12" and extra == "optuna") was missed
        marker = Requirement(line).marker
        if marker is not None and marker.evaluate({"extra": extra}) and not marker.evaluate({"extra": ""}):
            out.append(line.split(";")[0].strip())
    return out


def unknown_key_hint(argv):
    """The keys near a misspelt one, when an override in ``argv`` names a key the config
    does not have (``model.hiden_size=64``), else None.

    Hydra's refusal names the key but offers ``+model.hiden_size=64`` ("to append to your
    config"), which only moves the refusal to the runner's check of the model's arguments.
    Run after Hydra has refused, so composing the config again here costs a failing run
    only; a config from elsewhere (--config-dir and the like) gets no hint.
    """
    from hydra.core.override_parser.types import OverrideType
    try:
        overrides = _bundled_overrides(argv)
        if overrides is None:
            return None
        groups = {p.name for p in Path(config_dir()).iterdir() if p.is_dir()}
        choices = [o.input_line for o in overrides if o.type == OverrideType.CHANGE
                   and o.key_or_group in groups and not o.is_sweep_override()]
        cfg = OmegaConf.to_container(_composed(choices), resolve=False)
    except Exception:        # anything Hydra refuses here, it has already said
        return None
    for o in overrides:
        if (o.type != OverrideType.CHANGE or o.key_or_group in groups
                or o.key_or_group.startswith("hydra")):
            continue
        node, where = cfg, []
        for part in o.key_or_group.split("."):
            if not isinstance(node, dict):         # a key under a value: Hydra's message says so
                break
            if part not in node:
                at = ".".join(where)
                if o.key_or_group == "data.path" and any(
                        c.key_or_group in ("ckpt_path", "resume") for c in overrides):
                    # an evaluation or resume takes its data from the checkpoint, whose
                    # option may read a file though the command line's (sine) does not
                    return (f"data.path is not a key of the command line's data option; to "
                            f"give the checkpoint's data a file, append it: +{o.input_line}")
                near = difflib.get_close_matches(part, list(node), n=3)
                if near:
                    return (f"{o.key_or_group} is not a key of the config; did you mean "
                            f"{' or '.join(f'{at}.{k}' if at else k for k in near)}?")
                return (f"{o.key_or_group} is not a key of the config; "
                        f"{at or 'the top level'} has {', '.join(sorted(node))}")
            node = node[part]
            where.append(part)
    return None


def quoting_hint(argv):
    """How to quote a value Hydra could not parse (``data.column=load (kW)``, ``temp°C``),
    when quoting it for Hydra makes it parse, else None.

    Hydra reads parentheses, brackets, commas and non-ASCII letters in a value as syntax
    (or cannot read them), and its error ("Unknown function 'load'", a lexer's exception)
    does not say that the value only needed quotes, nor that they must survive the shell.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    parser = OverridesParser.create()
    for arg in argv:
        m = re.fullmatch(r"(\+{0,2}[\w./@-]+)=(.*)", arg, re.S)
        if not m:
            continue
        try:
            parser.parse_override(arg)
            continue
        except Exception:
            pass
        key, value = m.groups()
        items = re.fullmatch(r"\[([^\[\]{}'\"]*)\]", value)
        inner = items.group(1) if items else None
        mistyped = re.match(
            r"\s*([\[{]|(choice|range|interval|sort|shuffle|tag|glob|int|float|str|bool)\s*\()", value)
        if (inner is None and not mistyped and re.fullmatch(r"[^\[\]{}'\"]*", value)
                and key.lstrip("+") in _list_keys(argv)):
            # data.inputs=temp (C): quoted alone, the name was a string, which the list refused
            # in turn ("str is not a ListConfig"); its items go in brackets
            inner = value
        if inner is not None and inner.strip():
            # one list whose names need quotes (data.inputs=[temp (C),hour]): each item that
            # does not parse alone is quoted inside the brackets, not the list
            quoted = f"{key}=[{','.join(_quoted_item(parser, i) for i in inner.split(','))}]"
            try:
                parser.parse_override(quoted)
            except Exception:
                continue
            where = "" if items else f", in brackets ({key.lstrip('+')} is a list),"
            return (f"{arg}: Hydra reads characters such as ( ) [ ] , and non-ASCII letters in a "
                    f"list's item as its syntax; quote each such item for Hydra{where} inside the "
                    f"shell's quotes: {shlex.quote(quoted)}")
        if mistyped:
            continue       # a list, dict or sweep mistyped: quoted, it would be a string
        for q in "\"'":
            if q in value:
                continue
            quoted = f"{key}={q}{value}{q}"
            try:
                parser.parse_override(quoted)
            except Exception:
                continue
            return (f"{arg}: Hydra reads characters such as ( ) [ ] , and non-ASCII letters in a "
                    f"value as its syntax; quote the value for Hydra inside the shell's quotes: "
                    f"{shlex.quote(quoted)}")
    return None


def list_hint(argv):
    """How to write a list setting given a value that is not a list (``data.inputs=temp``, or
    ``-m data.inputs=temp,hour``), else None.

    OmegaConf's refusal ("Invalid value assigned: str is not a ListConfig, list or tuple",
    or "field 'data.inputs' is not Optional" for null) names the key but not the brackets a
    list is written in. (A value Hydra cannot parse at all is quoting_hint's.)
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep
    parser = OverridesParser.create()
    lists = None

    def item(text, value):
        # Hydra reads true, 1.50 and 1e3 as a bool or a number, which a list of strings
        # stores as "True", "1.5" and "1000.0": quoted, an item is the name as typed
        return text if isinstance(value, str) else f'"{text.strip()}"'
    for arg in argv:
        m = re.fullmatch(r"(\+{0,2}[\w./@-]+)=(.*)", arg, re.S)
        if not m:
            continue
        try:
            value = parser.parse_override(arg).value()
        except Exception:
            continue
        key, text = m.groups()
        if isinstance(value, str) and "${" in value:
            continue           # an interpolation, which OmegaConf takes for a list (${oc.create:[a]})
        if value is None:
            suggested = f"{key}=[]"
        elif isinstance(value, (str, int, float, bool)):
            suggested = f"{key}=[{item(text, value)}]"
        elif (isinstance(value, ChoiceSweep) and value.simple_form
              and re.fullmatch(r"[^\[\]{}()'\",]+(,[^\[\]{}()'\",]+)+", text)):
            # -m data.inputs=temp,hour: a sweep over single names, each refused as not a list
            items = [item(t, v) for t, v in zip(text.split(","), value.list)]
            suggested = f"{key}=[{','.join(items)}]"
        else:
            continue           # a list, a dict, or a sweep of them
        if lists is None:
            lists = _list_keys(argv)      # composed once, and only for a value not a list
        name = key.lstrip("+")
        if name not in lists:
            continue
        if value is None:
            return f"{arg}: {name} is a list; [] for none: {shlex.quote(suggested)}"
        if isinstance(value, ChoiceSweep):
            sweep = ",".join(f"[{i}]" for i in items)
            return (f"{arg}: {name} is a list, written in brackets: {shlex.quote(suggested)} for "
                    f"one list of these, {shlex.quote(f'{key}={sweep}')} for a sweep over them one "
                    "at a time")
        return f"{arg}: {name} is a list, written in brackets: {shlex.quote(suggested)}"
    return None


def _list_keys(argv) -> set:
    """The dotted keys that hold a list (``data.inputs`` with ``data=csv``) in the config
    ``python -m runner`` composes with the group options ``argv`` chooses; none for a config
    from elsewhere (--config-dir and the like: conf/ cannot speak for it) or one that does
    not compose. Each override is parsed alone: one Hydra cannot parse is left out."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType
    args = _hydra_args(argv)
    if args is None or args.config_dir or args.config_path or args.config_name:
        return set()
    parser = OverridesParser.create()
    groups = {p.name for p in Path(config_dir()).iterdir() if p.is_dir()}
    choices = []
    for line in args.overrides:
        try:
            o = parser.parse_override(line)
        except Exception:
            continue
        if o.type == OverrideType.CHANGE and o.key_or_group in groups and not o.is_sweep_override():
            choices.append(line)
    try:
        cfg = OmegaConf.to_container(_composed(choices), resolve=False)
    except Exception:          # whatever Hydra refuses here, it says itself
        return set()
    out, stack = set(), [("", cfg)]
    while stack:
        at, node = stack.pop()
        if isinstance(node, dict):
            stack.extend((f"{at}.{k}" if at else str(k), v) for k, v in node.items())
        elif isinstance(node, list):
            out.add(at)
    return out


def _quoted_item(parser, item):
    """A list item as typed if Hydra parses it alone, else in double quotes (its spaces
    at either end dropped, as Hydra drops them from an unquoted item)."""
    try:
        parser.parse_override(f"k={item}")
        return item
    except Exception:
        return f'"{item.strip()}"'


def interval_hint(argv):
    """What to add when ``interval()`` is given without the Optuna sweeper, else None: the
    basic sweeper's refusal was a raw traceback ("BasicSweeper does not support sweep
    type : INTERVAL_SWEEP") that named neither the override nor the sweeper that takes it."""
    if _asks_for_optuna(argv):
        return None
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import IntervalSweep
    parser = OverridesParser.create()
    for arg in argv:
        try:
            value = parser.parse_override(arg).value()
        except Exception:        # not an override (-m), or one Hydra cannot parse: not this
            continue
        if isinstance(value, IntervalSweep):
            # Hydra's own complaint without -m is "requires --multirun", and the sweeper
            # alone, added, met the same one
            multirun = "" if {"-m", "--multirun"} & set(argv) else "-m and "
            return (f"{arg}: interval() is a range for the Optuna sweeper to search; add "
                    f"{multirun}hparams_search=<a search config of conf/hparams_search> or "
                    "hydra/sweeper=optuna. The default sweeper takes a list (a,b,c) or range()")
    return None


def experiment_hint(argv):
    """Which group options of an ``experiment=`` the command line replaced, where the
    experiment has settings for them: those then land on another option (``experiment=adding
    data=sine``: the adding problem's ``data.seq_len``), and Hydra's refusal ("Key 'seq_len'
    not in 'SineConfig'") did not say where the key came from. Else None."""
    import yaml
    chosen = dict(m.groups() for a in argv if (m := re.fullmatch(r"\+{0,2}([\w/]+)=(.*)", a, re.S)))
    name = chosen.get("experiment")
    path = Path(config_dir()) / "experiment" / f"{name}.yaml"
    try:
        settings = yaml.safe_load(path.read_text())
        defaults = settings.get("defaults") or []
    except Exception:          # no such experiment (Hydra lists them), or not conf/'s
        return None
    picks = {}
    for entry in defaults:
        for key, option in (entry.items() if isinstance(entry, dict) else ()):
            m = re.fullmatch(r"override /(\w+)", str(key))
            if m:
                picks[m.group(1)] = str(option)
    said = []
    for g in sorted(picks):
        keys = settings.get(g) if isinstance(settings.get(g), dict) else {}
        if g in chosen and chosen[g] != picks[g] and keys:
            said.append(f"picks {g}={picks[g]} and sets {', '.join(f'{g}.{k}' for k in keys)} "
                        f"for it, which now apply to {g}={chosen[g]}")
    if not said:
        return None
    return (f"experiment={name} {'; it '.join(said)}; leave the option out, or choose another "
            "experiment")


def _bundled_overrides(argv):
    """Hydra's parse of the overrides in ``argv``, or None for a config from elsewhere
    (--config-dir and the like: conf/ cannot speak for it) or a command line argparse
    refuses; raises what Hydra's override parser would."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    args = _hydra_args(argv)
    if args is None or args.config_dir or args.config_path or args.config_name:
        return None
    return OverridesParser.create().parse_overrides(args.overrides)


def _composed(choices):
    """The config as ``python -m runner`` composes it with the group ``choices``, unresolved."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose("config", overrides=list(choices))
