"""The package's shape (issue 11): plain top-level imports, reading order, small modules.

Every module is exported from one numbered notebook. A module may import only modules whose notebooks come earlier
in reading order (so the notebooks can be read front to back and the import graph has no cycles); sibling imports
sit at module level, never inside functions; nothing reaches a sibling through a string (`importlib.import_module`,
`__import__`); and no module grows past ~600 lines.
"""
import ast, re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT/'genenet'
MODULES = sorted(p for p in PKG.glob('*.py') if p.name not in ('__init__.py', '_modidx.py'))
MAX_LINES = 600


def _source_notebook(f:Path) -> str:
    "The notebook a module is exported from (nbdev's header line)."
    m = re.search(r'File to edit: \.\./nbs/(\S+\.ipynb)', f.read_text())
    assert m, f'{f.name} has no nbdev header: every module is exported from a notebook'
    return m.group(1)


def _sibling(node) -> str|None:
    "The genenet module an import statement names, or None."
    if isinstance(node, ast.ImportFrom):
        if node.level: return (node.module or '').split('.')[0] or '<package>'
        if (node.module or '').startswith('genenet.'): return node.module.split('.')[1]
        if node.module == 'genenet': return '<package>'
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.name == 'genenet': return '<package>'
            if a.name.startswith('genenet.'): return a.name.split('.')[1]
    return None


def _imported_modules(tree) -> set[str]:
    out = set()
    for n in tree.body:
        if isinstance(n, ast.ImportFrom) and n.level and n.module is None:   # from . import a, b
            out |= {a.name for a in n.names}
        elif (s := _sibling(n)) and s != '<package>': out.add(s)
    return out


@pytest.mark.parametrize('f', MODULES, ids=lambda p: p.name)
def test_module_imports_plainly(f):
    tree = ast.parse(f.read_text())
    top = {id(n) for n in tree.body}
    inner = [n.lineno for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in top and _sibling(n)]
    assert not inner, f'{f.name}: sibling imports inside functions at lines {inner}'
    strings = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and (
        (isinstance(n.func, ast.Attribute) and n.func.attr == 'import_module') or (isinstance(n.func, ast.Name) and n.func.id == '__import__'))
        and n.args and isinstance(n.args[0], ast.Constant) and str(n.args[0].value).startswith(('genenet', '.'))]
    assert not strings, f'{f.name}: string imports of genenet modules at lines {strings}'


@pytest.mark.parametrize('f', MODULES, ids=lambda p: p.name)
def test_module_imports_only_earlier_notebooks(f):
    order = {m.stem: _source_notebook(m) for m in MODULES}
    mine = order[f.stem]
    later = sorted(m for m in _imported_modules(ast.parse(f.read_text())) if m in order and order[m] >= mine)
    assert not later, f'{f.name} ({mine}) imports {later}, exported from notebooks at or after it in reading order'


@pytest.mark.parametrize('f', MODULES, ids=lambda p: p.name)
def test_module_stays_small(f):
    n = len(f.read_text().splitlines())
    assert n <= MAX_LINES, f'{f.name} has {n} lines (limit {MAX_LINES}): split its notebook along a seam'


def test_layout_checks_can_fail(tmp_path):
    "The checks above catch what they claim to: an in-function sibling import and an upward import."
    tree = ast.parse('import os\nfrom .core import x\ndef f():\n    from .data import y\n    return y\n')
    top = {id(n) for n in tree.body}
    assert [n.lineno for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in top and _sibling(n)] == [4]
    assert _imported_modules(ast.parse('from . import data as d, models\nfrom genenet.core import z\nimport numpy')) == {'data', 'models', 'core'}


def test_reproduction_notebooks_show_progress():
    "`genenet reproduce` runs minutes per notebook: no quick setting silences its progress bars."
    import json
    silent = []
    for nb in sorted((ROOT/'nbs'/'repro').glob('*.ipynb')):
        src = '\n'.join(''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code')
        silent += [f'{nb.name}: {m.group(0)}' for m in re.finditer(r'progress\s*=\s*(False|not quick)', src)]
    assert not silent, f'progress bars switched off: {silent}'
