"""The Python example in API.md runs as written (documentation that users copy must work)."""

import re
from pathlib import Path

API = Path(__file__).resolve().parent.parent / "API.md"


def test_api_md_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", API.read_text(), re.S)
    assert len(blocks) == 2
    ns = {}
    exec(compile(blocks[1], str(API), "exec"), ns)    # blocks[0] is the signature listing
    assert ns["ex"].data_lost and ns["ex"].max_lost_bytes == 128
    assert ns["r"].lost_bytes == 128 and ns["r"].trace
    assert len(ns["runs"]) == 10 and ns["mine"].complete


def test_api_md_machine_signature_matches_the_code():
    import inspect
    import emu
    text = API.read_text()
    listing = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    documented = re.findall(r"^\s{4}(\w+)=", listing, re.M)
    params = [p for p in inspect.signature(emu.Machine).parameters if not p.startswith("_")]
    public = [p for p in params if p not in ("contexts", "program_rows", "data_bytes",
                                             "trace_events", "timeslice")]
    assert documented == public


README = API.parent / "README.md"


def _readme_commands():
    """Every ``emu ...`` command of README's shell blocks, as argv lists (comments, ``&&``
    chains and output redirections taken apart)."""
    import shlex
    out = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S):
        for line in block.splitlines():
            for cmd in line.split("#")[0].split("&&"):
                argv = shlex.split(cmd.split(">")[0])
                if argv[:1] == ["python"] and argv[1:3] == ["-m", "emu"]:
                    argv = ["emu"] + argv[3:]
                if argv[:1] == ["emu"] or argv[:1] == [".venv/bin/emu"]:
                    out.append(argv[1:])
    return out


def test_readme_commands_are_commands_emu_accepts():
    """What README tells users to type parses: subcommands and flags exist (nothing runs)."""
    from emu.cli import build_parser
    cmds = _readme_commands()
    assert len(cmds) >= 12 and ["demo"] in cmds
    for argv in cmds:
        build_parser().parse_args(argv)         # argparse exits (status 2) on a bad command


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    import tomli_w
    from emu.exec.builtin import race
    block = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    (tmp_path / "mine.toml").write_text(tomli_w.dumps(race(8, 1, "page_address").to_dict()))
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(block, str(README), "exec"), ns)
    assert ns["va"] == 0xBFE01000                    # as its comment says
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("1 ") and out[1].startswith("emu1:")


def _public_functions():
    """``(module.name, function)`` for every public function and public method of a public
    class defined in a public module of emu (no part of the dotted name starts with ``_``)."""
    import importlib
    import inspect
    import pkgutil
    import emu
    out = []
    for info in pkgutil.walk_packages(emu.__path__, "emu."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        mod = importlib.import_module(info.name)
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            if inspect.isfunction(obj):
                out.append((f"{info.name}.{name}", obj))
            elif inspect.isclass(obj):
                out += [(f"{info.name}.{name}.{k}", f) for k, f in vars(obj).items()
                        if not k.startswith("_") and inspect.isfunction(f)]
    return out


def _numpydoc_gap(f):
    """Whether ``f`` has no docstring, or takes arguments and its docstring has no numpydoc
    ``Parameters`` section."""
    import inspect
    doc = inspect.getdoc(f) or ""
    args = [p for p in inspect.signature(f).parameters if p not in ("self", "cls")]
    return not doc or bool(args and "Parameters\n----------" not in doc)


def test_public_functions_have_numpydoc_docstrings():
    funcs = _public_functions()
    names = {n for n, _ in funcs}
    assert len(funcs) > 150                     # the walk found emu's modules
    assert {"emu.machine.Machine.kmap_high", "emu.exec.explore.explore",
            "emu.cost.profile.profile", "emu.cli.main"} <= names
    assert [n for n, f in funcs if _numpydoc_gap(f)] == []


def _public_classes():
    """``(name, class)`` for every public class of a public module of emu."""
    import importlib
    import inspect
    import pkgutil
    import emu
    out = []
    for info in pkgutil.walk_packages(emu.__path__, "emu."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        mod = importlib.import_module(info.name)
        out += [(f"{info.name}.{n}", c) for n, c in vars(mod).items()
                if not n.startswith("_") and inspect.isclass(c) and c.__module__ == mod.__name__]
    return out


def test_public_classes_document_their_arguments_fields_and_properties():
    """A class one builds or reads has a numpydoc ``Parameters`` or ``Attributes`` section;
    its public properties have docstrings."""
    import inspect
    gaps = []
    classes = _public_classes()
    assert len(classes) > 20
    for name, cls in classes:
        doc = inspect.getdoc(cls) or ""
        if issubclass(cls, Exception):
            if not doc:
                gaps.append(name)
            continue
        init = vars(cls).get("__init__")
        takes = [p for p in inspect.signature(cls).parameters if not p.startswith("_")]
        sections = doc + (inspect.getdoc(init) or "" if init else "")
        if not doc or (takes and "Parameters\n----------" not in sections
                       and "Attributes\n----------" not in sections):
            gaps.append(name)
        gaps += [f"{name}.{k}" for k, v in vars(cls).items() if isinstance(v, property)
                 and not k.startswith("_") and not (v.fget.__doc__ or "").strip()]
    assert gaps == []


def test_numpydoc_check_flags_what_it_should():
    def documented(a):
        """Do.

        Parameters
        ----------
        a : int
        """

    def prose(a):
        """Do with ``a``."""

    def bare():
        pass
    assert [_numpydoc_gap(f) for f in (documented, prose, bare)] == [False, True, True]


def test_docstring_examples_run():
    """The examples in emu's docstrings (``>>>``) give what they show."""
    import doctest
    import emu
    import emu.exec.scenario
    for mod in (emu, emu.exec.scenario):
        r = doctest.testmod(mod, raise_on_error=False)
        assert r.attempted > 0 and r.failed == 0, mod.__name__


def test_public_classes_of_scenarios_have_numpydoc_docstrings():
    from emu.exec.scenario import Irq, Scenario, Task
    for cls in (Scenario, Task, Irq):
        assert "Parameters\n    ----------" in cls.__doc__, cls.__name__


def test_api_md_names_every_finding_kind():
    """API.md's list of finding kinds (the stable ``kind`` of ``Finding`` and of ``emu run
    --json``'s findings) names each kind the oracle can report."""
    from emu import consts as K
    text = API.read_text()
    assert [k for k in K.FIND_KIND_NAMES[1:] if f"`{k}`" not in text] == []
