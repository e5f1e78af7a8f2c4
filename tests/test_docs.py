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
