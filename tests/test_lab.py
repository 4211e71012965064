"""A tutorial run the way its readers run it: JupyterLab, a Jupyter server and the `genenet` kernel.

The set-up (`make setup`) registers a `genenet` kernelspec inside the virtual environment. This test starts a real
JupyterLab server on 127.0.0.1 with a token (its own process group, stopped by pid at the end, also on failure),
executes one tutorial notebook cell by cell through the server's REST + websocket kernel API (not nbclient
in-process), checks that the outputs hold a figure (`image/png`) and no error, saves the executed notebook through the
contents API, opens it in JupyterLab in headless Chromium and keeps a screenshot in `runs/lab-test/`.
"""
import json, os, shutil, signal, socket, subprocess, sys, time, uuid
from pathlib import Path
import urllib.request

import nbformat
import pytest
import websocket

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
ARTEFACTS = ROOT/'runs'/'lab-test'
# the tutorial executed through the server: the evaluation layer's worked example (toy controls, a leak audit, a figure)
TUTORIAL = os.environ.get('GENENET_LAB_TUTORIAL', 'nbs/04b_evaluate.ipynb')
pytestmark = pytest.mark.xdist_group('lab')   # one worker, one server
SKIP_FLAGS = ('#| slow', '#| notest', '#| gpu', '#|slow', '#|notest', '#|gpu')


def test_genenet_kernelspec_registered():
    "`make setup` registers the genenet kernel for this environment."
    out = subprocess.run([str(BIN/'jupyter'), 'kernelspec', 'list', '--json'], capture_output=True, text=True, check=True)
    specs = json.loads(out.stdout)['kernelspecs']
    assert 'genenet' in specs, f'no genenet kernel; have {sorted(specs)} — run `make setup`'
    argv = specs['genenet']['spec']['argv']
    assert Path(argv[0]).resolve().parent == Path(sys.executable).resolve().parent, \
        f'the genenet kernel runs {argv[0]}, not this environment ({sys.executable})'


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _get(url, token, data=None, method=None):
    req = urllib.request.Request(url, data=None if data is None else json.dumps(data).encode(), method=method,
                                 headers={'Authorization': f'token {token}', 'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=30) as r: return json.loads(r.read() or b'null')


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    "A JupyterLab server on 127.0.0.1 serving a copy of the tutorial; yields (base_url, token, root)."
    root = tmp_path_factory.mktemp('lab')
    shutil.copy(ROOT/TUTORIAL, root/Path(TUTORIAL).name)
    port, token = _free_port(), uuid.uuid4().hex
    env = {**os.environ, 'JUPYTER_CONFIG_DIR': str(root/'.jupyter'), 'JUPYTER_RUNTIME_DIR': str(root/'.runtime'),
           'OMP_NUM_THREADS': '1'}
    log = open(root/'server.log', 'w')
    proc = subprocess.Popen([str(BIN/'jupyter'), 'lab', '--no-browser', '--ip=127.0.0.1', f'--port={port}',
                             f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={root}',
                             '--ServerApp.open_browser=False'] + (['--allow-root'] if os.geteuid() == 0 else []),
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f'http://127.0.0.1:{port}'
    try:
        for _ in range(120):
            try: _get(f'{base}/api/status', token); break
            except Exception:
                if proc.poll() is not None: break
                time.sleep(0.5)
        else: pass
        assert proc.poll() is None, f'jupyter lab exited: {(root/"server.log").read_text()[-2000:]}'
        yield base, token, root
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)   # the server and the kernels it started
            try: proc.wait(timeout=20)
            except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _execute(ws, code, timeout=300):
    "Run `code` on the kernel behind websocket `ws`; return the iopub outputs as nbformat output dicts."
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps(dict(header=dict(msg_id=msg_id, msg_type='execute_request', username='test', session=uuid.uuid4().hex,
                                        version='5.3', date=''),
                            parent_header={}, metadata={}, channel='shell', buffers=[],
                            content=dict(code=code, silent=False, store_history=True, user_expressions={},
                                         allow_stdin=False, stop_on_error=True))))
    outputs, deadline = [], time.time() + timeout
    while time.time() < deadline:
        m = json.loads(ws.recv())
        if m.get('parent_header', {}).get('msg_id') != msg_id or m.get('channel') != 'iopub': continue
        t, c = m['msg_type'], m['content']
        if t == 'status' and c['execution_state'] == 'idle': return outputs
        if t == 'stream': outputs.append(nbformat.v4.new_output('stream', name=c['name'], text=c['text']))
        elif t in ('display_data', 'execute_result'):
            outputs.append(nbformat.v4.new_output('display_data', data=c['data'], metadata=c.get('metadata', {})))
        elif t == 'error': outputs.append(nbformat.v4.new_output('error', ename=c['ename'], evalue=c['evalue'],
                                                                   traceback=c['traceback']))
    raise TimeoutError(f'cell did not finish in {timeout} s:\n{code[:500]}')


def test_tutorial_runs_through_server_and_renders_in_lab(lab):
    base, token, root = lab
    name = Path(TUTORIAL).name
    nb = nbformat.read(root/name, as_version=4)
    kernel = _get(f'{base}/api/kernels', token, data=dict(name='genenet'), method='POST')
    ws = websocket.create_connection(f'ws://127.0.0.1:{base.rsplit(":", 1)[1]}/api/kernels/{kernel["id"]}/channels'
                                     f'?token={token}', timeout=300)
    t0 = time.time()
    try:
        for cell in nb.cells:
            if cell.cell_type != 'code' or cell.source.lstrip().startswith(SKIP_FLAGS): continue
            cell.outputs = _execute(ws, cell.source)
            errors = [o for o in cell.outputs if o.output_type == 'error']
            assert not errors, f'{name}: cell failed through the kernel API:\n{cell.source[:400]}\n' \
                               f'{errors[0].ename}: {errors[0].evalue}'
    finally: ws.close()
    seconds = time.time() - t0
    pngs = [o for c in nb.cells if c.cell_type == 'code' for o in c.outputs if 'image/png' in o.get('data', {})]
    assert pngs, f'{name}: no figure (image/png) among the outputs'
    assert seconds <= 120, f'{name} took {seconds:.0f} s through the kernel (tutorials must run in ≤ 2 min)'
    # save the executed notebook through the contents API so JupyterLab shows its outputs, on the genenet kernel
    nb.metadata['kernelspec'] = dict(name='genenet', display_name='Python (genenet)', language='python')
    _get(f'{base}/api/contents/{name}', token, data=dict(type='notebook', format='json', content=nb), method='PUT')
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    png = ARTEFACTS/f'{Path(name).stem}_jupyterlab.png'
    png.unlink(missing_ok=True)
    cp = subprocess.run([CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                         '--disable-background-networking', '--disable-component-update', '--disable-sync',
                         '--disable-dev-shm-usage', '--hide-scrollbars', '--window-size=1400,1000',
                         f'--user-data-dir={root/"chromium"}', '--virtual-time-budget=30000', f'--screenshot={png}',
                         f'{base}/lab/tree/{name}?token={token}'], capture_output=True, text=True, timeout=240)
    assert cp.returncode == 0, f'chromium exited {cp.returncode}: {cp.stderr[-1500:]}'
    assert png.exists() and png.stat().st_size > 20_000, 'no JupyterLab screenshot'
    (ARTEFACTS/'timing.json').write_text(json.dumps(dict(notebook=TUTORIAL, seconds=round(seconds, 1))))
