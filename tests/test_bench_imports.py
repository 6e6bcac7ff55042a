"""Every project module a bench imports exists in the repository (a bench is run by hand, rarely)."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = {"bench", "broxiva", "fx", "translations", "products", "seo", "domains", "notifications", "tests"}


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.split(".")[0] in PROJECT_PACKAGES}


def test_bench_imports_resolve_to_tracked_files():
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    tracked = set(listed.stdout.split())
    missing = []
    for bench in sorted((ROOT / "bench").glob("*.py")):
        for module in _imported_modules(bench):
            spec = importlib.util.find_spec(module.split(".")[0]) and importlib.util.find_spec(module)
            origin = Path(spec.origin).resolve() if spec and spec.origin else None
            if origin is None or (tracked and str(origin.relative_to(ROOT)) not in tracked):
                missing.append(f"{bench.name}: {module}")
    assert not missing, f"benches import modules that are not in the repository: {missing}"
