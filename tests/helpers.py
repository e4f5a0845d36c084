"""Helpers shared by the tests."""

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def notebook_function(notebook: str, name: str):
    """The function ``name`` as a notebook writes it out: its cell's imports, constants and that definition only.

    Lets a test check the code a learner reads against the library or the package, with no copy of it.
    """
    cells = json.loads((ROOT / "notebooks" / notebook).read_text(encoding="utf-8"))["cells"]
    source = next("".join(c["source"]) for c in cells if c["cell_type"] == "code" and f"def {name}(" in "".join(c["source"]))
    tree = ast.parse(source)
    tree.body = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                 or (isinstance(n, ast.FunctionDef) and n.name == name)
                 or (isinstance(n, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in n.targets))]
    namespace: dict = {}
    exec(compile(tree, f"{notebook}:{name}", "exec"), namespace)
    return namespace[name]
