"""The offline documentation site in a real browser (headless Debian Chromium).

Builds the docs of this checkout with `genenet.cli.build_docs` into a temporary folder (executing 04_metrics so its
page has a figure), serves them from 127.0.0.1 with http.server, loads the navigation page, the metrics API page and one
method page in headless Chromium, and checks the rendered DOM: links to every page, API entries from show_doc, and a
figure. Screenshots are kept as artefacts in runs/docs_screenshot*.png.
Skipped (with the reason) when /usr/bin/chromium is absent: `apt-get install -y chromium` (about 30 s here).
"""
import functools, http.server, re, subprocess, threading
from pathlib import Path

import pytest

CHROMIUM = Path('/usr/bin/chromium')
ROOT = Path(__file__).resolve().parents[1]
ARTEFACTS = ROOT/'runs'

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason='Debian chromium not installed at /usr/bin/chromium (apt-get install -y chromium); '
                                       'browser test of the offline docs skipped')

FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-dev-shm-usage', '--hide-scrollbars', '--window-size=1280,1400']


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    from genenet.cli import build_docs, doc_notebooks
    out = tmp_path_factory.mktemp('site')
    df = build_docs(out, runs=ROOT/'runs', execute=['04_metrics'], progress=False)
    assert len(df) == len(doc_notebooks()), 'one page per notebook'
    bad = df[df.error.fillna('').str.startswith('not rendered')]
    assert bad.empty, f'pages not rendered:\n{bad[["notebook", "error"]].to_string()}'
    return out, df


@pytest.fixture(scope='module')
def server(site):
    out, _ = site
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True); t.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown(); httpd.server_close()


def chromium(url, profile, *extra, timeout=180):
    "Run headless Chromium on `url` with `extra` flags; return stdout."
    cp = subprocess.run([str(CHROMIUM), *FLAGS, f'--user-data-dir={profile}', *extra, url],
                        capture_output=True, text=True, timeout=timeout)
    assert cp.returncode == 0, f'chromium exited {cp.returncode}: {cp.stderr[-2000:]}'
    return cp.stdout


def dump_dom(url, tmp_path):
    dom = chromium(url, tmp_path/'profile', '--dump-dom')
    assert '<html' in dom.lower(), f'no DOM for {url}'
    return dom


def screenshot(url, tmp_path, name):
    ARTEFACTS.mkdir(exist_ok=True)
    png = ARTEFACTS/name
    if png.exists(): png.unlink()
    chromium(url, tmp_path/'profile', f'--screenshot={png}')
    assert png.exists() and png.stat().st_size > 10_000, f'no screenshot written for {url}'
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    return png


def test_index_links_every_page(site, server, tmp_path):
    out, df = site
    dom = dump_dom(f'{server}/index.html', tmp_path)
    for page in df.page:
        assert f'href="{page}"' in dom, f'index does not link {page}'
    assert 'Tutorials and API' in dom
    screenshot(f'{server}/index.html', tmp_path, 'docs_screenshot.png')


def test_api_page_has_entries_and_a_figure(site, server, tmp_path):
    dom = dump_dom(f'{server}/metrics.html', tmp_path)
    for fn in ['binary_metrics', 'multiclass_metrics', 'regression_metrics', 'summarise', 'mean_se', 'plot_roc_pr']:
        assert re.search(rf'<h[2-4][^>]*id="{fn}"', dom), f'no show_doc entry for {fn}'
    imgs = re.findall(r'<img[^>]+src="data:image/png;base64,', dom)
    assert imgs, 'the executed ROC/PR figure is missing'
    assert 'class="gn-side"' in dom and 'href="index.html"' in dom, 'navigation sidebar'
    assert '#|' not in dom, 'nbdev directives leaked into the page'
    screenshot(f'{server}/metrics.html', tmp_path, 'docs_screenshot_metrics.png')


def test_method_page_has_api_entries(site, server, tmp_path):
    _, df = site
    methods = [p for n, p in zip(df.notebook, df.page) if re.match(r'[1-4]\d[a-z]?_', n)]
    if not methods: pytest.skip('no method notebooks (10_*-49_*) yet')
    dom = dump_dom(f'{server}/{methods[0]}', tmp_path)
    assert re.search(r'<h[2-4][^>]*id="[A-Za-z_]\w*"', dom), f'{methods[0]}: no API entries'
    assert 'class="gn-side"' in dom
