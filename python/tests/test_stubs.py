"""The type stubs match the module: every native function is stubbed with its parameters, and
every public name of the package is documented."""

import ast
import inspect
import pathlib
import subprocess
import sys

import seqhouse
from seqhouse import _seqhouse

STUB = pathlib.Path(seqhouse.__file__).with_name("_seqhouse.pyi")


def stubbed_functions():
    tree = ast.parse(STUB.read_text())
    return {node.name: [a.arg for a in node.args.args + node.args.kwonlyargs] for node in tree.body
            if isinstance(node, ast.FunctionDef)}


def test_the_native_stubs_match_the_module():
    stubs = stubbed_functions()
    native = {name: getattr(_seqhouse, name) for name in dir(_seqhouse)
              if not name.startswith("_") and callable(getattr(_seqhouse, name))}
    assert stubs.keys() == native.keys()
    for name, function in native.items():
        parameters = list(inspect.signature(function).parameters)
        assert parameters == stubs[name], name


def test_stubtest_finds_the_stubs_true_to_the_module():
    # mypy's own check: names, parameters, kinds and defaults of the stubs against the module as
    # it loads (scripts/test installs mypy; a missing mypy is a failure, not a skip).
    config = pathlib.Path(__file__).parents[1] / "pyproject.toml"
    checked = subprocess.run([sys.executable, "-m", "mypy.stubtest", "seqhouse", "--mypy-config-file", str(config)],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_package_exports_every_error_class():
    assert set(seqhouse.errors.__all__) <= set(seqhouse.__all__)


def test_the_package_is_typed_and_documented():
    assert (pathlib.Path(seqhouse.__file__).parent / "py.typed").exists()
    for name in seqhouse.__all__:
        if name == "__version__":
            continue
        item = getattr(seqhouse, name)
        assert inspect.getdoc(item), f"seqhouse.{name} has no docstring"
    for name in ["sequence", "publish", "read", "to_numpy"]:
        hints = inspect.get_annotations(getattr(seqhouse, name))
        assert "return" in hints, name
