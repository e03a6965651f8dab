"""The layout of chalicelib/: folders by concern, imports that only run down, no cycles."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "chalicelib"

# Lowest first. A module may import its own layer and the layers below it, never above.
LAYERS = [
    {"config", "errors", "logs", "host"},
    {"store"},
    {"presets"},
    {"media"},
    {"accounts"},
    {"jobs"},
    {"graph"},
    {"delivery"},
    {"fleet"},
    {"api"},
]
MAX_LINES = 430  # "about 400": a module past it holds two things
AWS = ("boto3", "botocore", "pynamodb", "chalicelib.store")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions, type-only ones too."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {dep for dep in _imports(path) if dep in modules and dep != name} - {"chalicelib"}
        for name, path in modules.items()
    }


def _concern(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer(module: str) -> int:
    concern = _concern(module)
    for index, layer in enumerate(LAYERS):
        if concern in layer:
            return index
    raise AssertionError(f"{module} belongs to no layer: add its folder to LAYERS")


def test_the_top_level_holds_only_the_foundation():
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert set(top) <= LAYERS[0], f"modules at the top of chalicelib/: {top}"


def test_every_module_belongs_to_a_layer():
    for module in _modules():
        if module != "chalicelib":
            _layer(module)


def test_nothing_imports_from_a_layer_above_it():
    upward = [
        f"{module} -> {dep}"
        for module, deps in _graph().items()
        if module != "chalicelib"
        for dep in deps
        if _layer(dep) > _layer(module)
    ]
    assert upward == []


def test_there_are_no_import_cycles():
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_media_knows_nothing_of_aws():
    for module, path in _modules().items():
        if module.startswith("chalicelib.media"):
            bad = sorted(d for d in _imports(path) if d.startswith(AWS))
            assert bad == [], f"{module} imports {bad}"


def test_planning_knows_nothing_of_ffmpeg():
    deps = _imports(PACKAGE / "graph" / "plan.py")
    bad = sorted(d for d in deps if d.startswith(("chalicelib.media", "subprocess")))
    assert bad == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_no_module_passes_400_lines_but_data_tables(path):
    if path.name in {"allowlist.py", "config.py"}:  # the allow-list and the settings reference
        return
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines"
