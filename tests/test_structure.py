"""The package's shape, read from its source with ``ast``: imports point one way, at the top, and
functions stay short enough to read.

Each checker is first shown to fail on a crafted source, so that a green run means something.
"""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nlp_course"
MAX_FUNCTION_LINES = 80


def course_imports(tree: ast.Module, module: str) -> list[tuple[str, ast.AST]]:
    """``(imported course module, node)`` for every import of a course module anywhere in ``tree``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[1], node) for alias in node.names
                      if alias.name.startswith("nlp_course.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from .x import y
                names = [node.module] if node.module else [alias.name for alias in node.names]
                found += [(name.split(".")[0], node) for name in names]
            elif node.module == "nlp_course":
                found += [(alias.name, node) for alias in node.names]
            elif node.module and node.module.startswith("nlp_course."):
                found.append((node.module.split(".")[1], node))
    return sorted(((name, node) for name, node in found if name != module), key=lambda pair: pair[1].lineno)


def imports_inside_functions(tree: ast.Module, module: str) -> list[str]:
    """Course imports that are not statements of the module itself (in a function, a class, an ``if``)."""
    top_level = {id(node) for node in tree.body}
    return [f"{module}:{node.lineno} imports {name}" for name, node in course_imports(tree, module)
            if id(node) not in top_level]


def imports_after_definitions(tree: ast.Module, module: str) -> list[str]:
    """Course imports written below the first function or class: the graph must be read from the top."""
    first = next((n.lineno for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))), None)
    return [f"{module}:{node.lineno} imports {name} below its first definition"
            for name, node in course_imports(tree, module) if first is not None and node.lineno > first]


def long_functions(tree: ast.Module, module: str, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    return [f"{module}.{node.name} has {node.end_lineno - node.lineno + 1} lines" for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > limit]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle found by a depth-first search, each as the path that closes it."""
    found, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def package_trees() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text(encoding="utf-8")) for path in sorted(PACKAGE.glob("*.py"))}


def import_graph(trees: dict[str, ast.Module]) -> dict[str, set[str]]:
    return {module: {name for name, _ in course_imports(tree, module)} for module, tree in trees.items()}


# ---------------------------------------------------------------- the checkers can fail
def test_the_checkers_catch_crafted_faults():
    tree = ast.parse(textwrap.dedent("""
        from nlp_course.data import load_corpus
        def f():
            from nlp_course import tokenization
            return 1
        import nlp_course.runs
        class C:
            def g(self):
                from .packing import group_texts
    """))
    assert [n for n, _ in course_imports(tree, "x")] == ["data", "tokenization", "runs", "packing"]
    assert imports_inside_functions(tree, "x") == ["x:4 imports tokenization", "x:9 imports packing"]
    assert imports_after_definitions(tree, "x") == ["x:4 imports tokenization below its first definition",
                                                    "x:6 imports runs below its first definition",
                                                    "x:9 imports packing below its first definition"]
    long = ast.parse("def f():\n" + "    x = 1\n" * 81)
    assert long_functions(long, "m") == ["m.f has 82 lines"] and long_functions(ast.parse("def f():\n    pass\n"), "m") == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


# ---------------------------------------------------------------- the package
def test_no_import_cycle_between_course_modules():
    assert cycles(import_graph(package_trees())) == []


def test_course_imports_are_written_at_the_top_of_each_file():
    trees = package_trees()
    problems = [p for module, tree in trees.items()
                for p in imports_inside_functions(tree, module) + imports_after_definitions(tree, module)]
    assert problems == []


def test_no_function_longer_than_80_lines():
    assert [p for module, tree in package_trees().items() for p in long_functions(tree, module)] == []


def test_the_data_flow_order():
    """Imports point backwards along the data flow: the machine, then data, tokenizers, blocks, models, runs."""
    graph = import_graph(package_trees())
    assert graph["errors"] == set() and graph["runtime"] == set()
    assert graph["files"] == {"errors"}
    for early in ("data", "code_corpus", "tokenization", "packing", "objectives", "models"):
        assert not graph[early] & {"runs", "mlm", "electra", "clm", "pretrain", "finetune"}, early
    assert graph["pretrain"] <= {"errors", "runs", "mlm", "electra", "clm"}, "the command line only dispatches"


@pytest.mark.parametrize("module", ["nlp_course", "nlp_course.data", "nlp_course.code_corpus"])
def test_loading_data_imports_no_torch(module):
    done = subprocess.run([sys.executable, "-c", f"import sys, {module}; print('torch' in sys.modules)"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
