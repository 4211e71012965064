"""The documentation site in a real browser (headless Debian Chromium).

Runs one quick reproduction notebook (`genenet_tsne` by default, `$GENENET_DOCS_TEST_REPRO` to change) through
`genenet.reproduce.run_notebooks` into a temporary runs folder, builds the site of this checkout with
`genenet.docs.build_site(out, runs=..., execute=True)` (executed notebooks come from the cache in
`cache_dir('docs')` when nothing changed), serves it from 127.0.0.1 and checks in headless Chromium: search finds
"VVP", math is typeset by the site's own MathJax (no raw `$` left on the GRASP page), every tutorial shows an
executed output and a figure, the reproduction page shows the run's figure and numbers; statically: every internal
link resolves, nothing is loaded from the network, no machine path appears, files are world-readable.
Screenshots and `build.json` (build time, site size, per-page table) go to runs/docs-test/.
Skipped (with the reason) when /usr/bin/chromium is absent: `apt-get install -y chromium`.
"""
import functools, html.parser, http.server, json, os, re, stat, subprocess, threading, time
from pathlib import Path

import pytest

CHROMIUM = Path('/usr/bin/chromium')
ROOT = Path(__file__).resolve().parents[1]
ARTEFACTS = ROOT/'runs'/'docs-test'
REPRO = os.environ.get('GENENET_DOCS_TEST_REPRO', 'genen_tsne')

pytestmark = [pytest.mark.xdist_group('docs'),   # one worker builds the site once for all these tests
              pytest.mark.skipif(not CHROMIUM.exists(),
                                reason='Debian chromium not installed at /usr/bin/chromium (apt-get install -y chromium); '
                                       'browser test of the docs site skipped')]

FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-dev-shm-usage', '--hide-scrollbars', '--virtual-time-budget=20000']


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory):
    "One quick reproduction run, as `genenet reproduce NAME --quick` writes it."
    from genenet.reproduce import run_notebooks
    runs = tmp_path_factory.mktemp('runs')
    t0 = time.perf_counter()
    df = run_notebooks([REPRO], quick=True, out=runs, progress=False)
    return runs, df, round(time.perf_counter() - t0, 1)


@pytest.fixture(scope='module')
def site(quick_run, tmp_path_factory):
    from genenet.docs import build_site
    runs, _, repro_s = quick_run
    out = tmp_path_factory.mktemp('site')/'site'
    df = build_site(out, runs=runs, execute=True, progress=True)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    report = dict(build_seconds=df.attrs['seconds'], size_mb=df.attrs['size_mb'], repro_seconds=repro_s,
                  n_files=sum(1 for p in out.rglob('*') if p.is_file()), sphinx_warnings=df.attrs['warnings'][:50],
                  pages=json.loads(df.drop(columns=['title']).to_json(orient='records')))
    (ARTEFACTS/'build.json').write_text(json.dumps(report, indent=1))
    print(f"\ndocs build: {report['build_seconds']} s, {report['size_mb']} MB, {report['n_files']} files; "
          f"repro {REPRO}: {repro_s} s")
    return out, df


@pytest.fixture(scope='module')
def server(site):
    out, _ = site
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    handler = functools.partial(Quiet, directory=str(out))
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True); t.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown(); httpd.server_close()


def chromium(url, profile, *extra, size='1280,1400', timeout=180):
    "Run headless Chromium on `url` with `extra` flags; return stdout."
    cp = subprocess.run([str(CHROMIUM), *FLAGS, f'--window-size={size}', f'--user-data-dir={profile}', *extra, url],
                        capture_output=True, text=True, timeout=timeout)
    assert cp.returncode == 0, f'chromium exited {cp.returncode}: {cp.stderr[-2000:]}'
    return cp.stdout


def dump_dom(url, tmp_path):
    dom = chromium(url, tmp_path/'profile', '--dump-dom')
    assert '<html' in dom.lower(), f'no DOM for {url}'
    return dom


def screenshot(url, tmp_path, name, size='1280,1400'):
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    png = ARTEFACTS/name
    if png.exists(): png.unlink()
    chromium(url, tmp_path/'profile', f'--screenshot={png}', size=size)
    assert png.exists() and png.stat().st_size > 10_000, f'no screenshot written for {url}'
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    return png


class _Text(html.parser.HTMLParser):
    "Visible text of the article, without code, scripts and MathJax's own markup."
    SKIP = {'script', 'style', 'pre', 'code', 'mjx-container', 'mjx-assistive-mml', 'math', 'textarea'}
    def __init__(self):
        super().__init__(); self.depth, self.inside, self.parts = 0, 0, []
    def handle_starttag(self, tag, attrs):
        if tag == 'article': self.inside += 1
        if tag in self.SKIP: self.depth += 1
    def handle_endtag(self, tag):
        if tag == 'article': self.inside -= 1
        if tag in self.SKIP: self.depth = max(0, self.depth - 1)
    def handle_data(self, data):
        if self.inside and not self.depth: self.parts.append(data)


def article_text(dom):
    p = _Text(); p.feed(dom)
    return ''.join(p.parts)


def pages(df, section):
    return df[df.section == section].page.tolist()


def test_every_page_builds_and_executes(site):
    "A notebook that fails to execute does not stop the build, but it is reported here."
    out, df = site
    assert (out/'index.html').exists() and (out/'search.html').exists() and (out/'searchindex.js').exists()
    for p in df.page: assert (out/p).exists(), f'{p} not written'
    bad = df[(df.section != 'reproductions') & df.error.notna()]
    assert bad.empty, 'pages that did not execute cleanly:\n' + bad[['notebook', 'executed', 'error']].to_string()


def test_search_finds_vvp(site, server, tmp_path):
    dom = dump_dom(f'{server}/search.html?q=VVP', tmp_path)
    hits = re.findall(r'<li[^>]*>\s*<a[^>]+href="([^"]+)"', dom.split('id="search-results"', 1)[-1])
    assert hits, 'search for "VVP" returned no result'
    assert any('ugrn' in h for h in hits), f'search for "VVP" does not find the UGRN page: {hits[:10]}'


def test_math_is_typeset(site, server, tmp_path):
    dom = dump_dom(f'{server}/grasp.html', tmp_path)
    assert dom.count('<mjx-container') >= 3, 'MathJax did not typeset the GRASP page'
    text = article_text(dom)
    assert len(text) > 2000, 'GRASP article text missing'
    raw = [text[max(0, m.start() - 40):m.end() + 40] for m in re.finditer(r'\$', text)]
    assert not raw, f'raw $ left on the GRASP page: {raw[:5]}'
    assert '\\mathbb' not in text and '\\in' not in text


def test_internal_links_resolve(site):
    from genenet.docs import broken_links
    out, _ = site
    bad = broken_links(out)
    assert not bad, f'{len(bad)} broken internal links:\n' + '\n'.join(bad[:40])


def test_offline_light_private_readable(site):
    out, df = site
    root, home = str(ROOT), str(Path.home())
    for page in out.rglob('*.html'):
        text = page.read_text()
        ext = re.findall(r'<(?:script|link|img)\b[^>]*\s(?:src|href)="((?:https?:)?//[^"]+)"', text)
        ext = [u for u in ext if not re.search(r'<link[^>]+rel="(?:canonical|author|license)', text)] if ext else ext
        assert not [u for u in ext if not u.startswith('https://github.com')], f'{page.name} loads from the network: {ext[:3]}'
        assert '<style' not in text or len(max(re.findall(r'<style[^>]*>(.*?)</style>', text, re.S) or [''], key=len)) < 5000, \
            f'{page.name} inlines a large stylesheet'
        for p in (root, home + '/'):
            assert p not in text, f'machine path {p!r} on {page.relative_to(out)}'
        words = article_text(text)
        assert '/tmp/' not in words, f'temporary path on {page.relative_to(out)}'
        assert '{target=' not in words and '#|' not in words, f'nbdev/Quarto syntax leaked into {page.relative_to(out)}'
    for p in [out, *out.rglob('*')]:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o755 if p.is_dir() else 0o644), f'{p.relative_to(out)} has mode {oct(mode)}'
    assert (out/'_static'/'mathjax'/'tex-chtml.js').exists(), 'MathJax not served from the site'
    sizes = [p.stat().st_size for p in out.glob('*.html')]
    assert max(sizes) < 3_000_000, 'a page over 3 MB'


def test_tutorials_show_executed_outputs_and_figures(site, server, tmp_path):
    out, df = site
    tut = pages(df, 'tutorials')
    from genenet.docs import TUTORIALS
    assert len(tut) == len(TUTORIALS), f'expected one tutorial per method notebook {TUTORIALS}, got {tut}'
    screenshot(f'{server}/{tut[0]}', tmp_path, 'tutorial.png')
    screenshot(f'{server}/{tut[0]}', tmp_path, 'tutorial-phone.png', size='420,900')
    no_fig, no_out = [], []
    for p in tut:
        text = (out/p).read_text()
        if not re.search(r'class="cell_output[^"]*"', text): no_out.append(p)
        if not re.search(r'<div class="cell_output[^"]*".*?<img[^>]+src="_images/', text, re.S): no_fig.append(p)
    assert not (no_out or no_fig), (f'tutorial pages without an executed output: {no_out}; '
                                    f'tutorial pages without a rendered figure: {no_fig}')
    dom = dump_dom(f'{server}/{tut[0]}', tmp_path)
    assert 'bd-sidebar-primary' in dom and 'bd-toc' in dom, 'no sidebar / in-page table of contents'
    assert 'copybtn' in dom, 'no copy buttons on code cells'


def test_reproduction_page_shows_the_run(quick_run, site, server, tmp_path):
    runs, rdf, _ = quick_run
    out, df = site
    page = f'repro/{REPRO}.html'
    assert page in set(df.page), f'no page {page}'
    screenshot(f'{server}/{page}', tmp_path, 'reproduction.png')
    status = rdf.status.iloc[0]
    assert status == 'ok', f'the quick run of {REPRO} failed ({status}): {rdf.error.iloc[0]}'
    dom = dump_dom(f'{server}/{page}', tmp_path)
    assert re.search(r'<img[^>]+src="\.\./_images/[^"]+\.(png|svg)"', dom), f'{page}: no figure from the run'
    assert 'class="gn-run"' in dom and 'gn-badge gn-ok' in dom, f'{page}: no run status'
    summary = (out/'reproductions.html').read_text()
    assert f'href="repro/{REPRO}.html"' in summary


def test_index_tour_and_sections(site, server, tmp_path):
    out, df = site
    dom = dump_dom(f'{server}/index.html', tmp_path)
    for cap in ['Tutorials', 'Reproductions', 'API reference', 'Explanations']:
        assert cap in dom, f'sidebar section {cap!r} missing'
    for p in pages(df, 'tutorials') + ['reproductions.html', 'api.html']:
        assert f'href="{p}"' in dom, f'index does not link {p}'
    screenshot(f'{server}/index.html', tmp_path, 'index.png')
    screenshot(f'{server}/index.html', tmp_path, 'index-phone.png', size='420,900')
