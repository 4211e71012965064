"bench/gpu.py runs end to end on the CPU with --tiny (the GPU benchmark's code paths, not its numbers)."
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_bench_tiny_runs_every_section(tmp_path):
    out = tmp_path/'results.json'
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1'}
    p = subprocess.run([sys.executable, str(ROOT/'bench'/'gpu.py'), '--tiny', '--device', 'cpu', '--out', str(out)],
                       capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r['tiny'] and r['errors'] == {} and r['skipped'] == []
    assert set(r['sections']) == {'grasp', 'ugrn', 'genen', 'text'}
    paths = {'full_recompute', 'full_recompute_trimmed', 'query_nograd_suffix_grad', 'cached_on_device', 'cached_on_cpu'}
    assert len(r['sections']['grasp']) == 2
    for g in r['sections']['grasp']:
        assert set(g['paths']) == paths and all(v['pairs_per_s'] > 0 for v in g['paths'].values())
        # the paths compute the same suffix state (fp32 on the CPU), so their speeds are comparable
        assert set(g['max_rel_diff_vs_full']) == paths - {'full_recompute'}
        assert max(g['max_rel_diff_vs_full'].values()) < 1e-4, g['max_rel_diff_vs_full']
        assert g['cache_mib_per_pair'] > 0
    u = r['sections']['ugrn']
    assert u['vvp']['shape'] == [u['sources_measured'], u['n_values'], u['genes']]
    assert u['gdt']['shape'] == [u['n_bases'], u['sources_measured'], u['genes']]
    assert r['sections']['genen']['gcn']['ms_per_epoch'] > 0 and r['sections']['genen']['gat']['ms_per_epoch'] > 0
    assert all(v['texts_per_s'] > 0 for v in r['sections']['text'].values())
    assert 'GRASP' in p.stdout and 'wrote' in p.stdout


def test_gpu_bench_reports_a_failing_section(tmp_path):
    "An unknown section is a usage error; the budget guard skips sections and says so."
    out = tmp_path/'r.json'
    p = subprocess.run([sys.executable, str(ROOT/'bench'/'gpu.py'), '--tiny', '--device', 'cpu', '--sections', 'nope',
                        '--out', str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and 'unknown section' in p.stderr
    p = subprocess.run([sys.executable, str(ROOT/'bench'/'gpu.py'), '--tiny', '--device', 'cpu', '--sections', 'genen,text',
                        '--budget', '0', '--out', str(out)], capture_output=True, text=True, timeout=300)
    r = json.loads(out.read_text())
    assert p.returncode == 0 and r['skipped'] == ['genen', 'text'] and r['sections'] == {}
