"Paths, atomic writes, the on-disk cache and seeding (genenet.core)."
import json, os, subprocess, sys, warnings
from pathlib import Path

import numpy as np
import pytest

from genenet import core as C


def test_data_root_and_cache_dir_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv('GENENET_DATA', str(tmp_path/'d'))
    monkeypatch.setenv('GENENET_CACHE', str(tmp_path/'c'))
    assert C.data_root() == tmp_path/'d'
    p = C.cache_dir('a', 'b')
    assert p == tmp_path/'c'/'a'/'b' and p.is_dir()
    monkeypatch.delenv('GENENET_CACHE')
    assert C.cache_dir('x').parent == C.user_cache_root()/'cache'


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    f = tmp_path/'x.json'
    C.atomic_write_json(f, {'a': 1})
    with pytest.raises(RuntimeError):
        with C.atomic_path(f) as tmp:
            tmp.write_text('{"a": 2')
            raise RuntimeError('killed mid-write')
    assert json.loads(f.read_text()) == {'a': 1} and [p.name for p in tmp_path.iterdir()] == ['x.json']


def test_atomic_write_survives_kill_9(tmp_path):
    "A writer killed with SIGKILL mid-write leaves the previous file intact (os.replace is the commit)."
    f = tmp_path/'state.json'
    C.atomic_write_json(f, {'v': 'old'})
    code = ('import os, signal\nfrom genenet.core import atomic_path\n'
            f'with atomic_path({str(f)!r}) as t:\n    t.write_text("{{partial")\n    os.kill(os.getpid(), signal.SIGKILL)\n')
    r = subprocess.run([sys.executable, '-c', code])
    assert r.returncode == -9 and json.loads(f.read_text()) == {'v': 'old'}


def test_stable_hash():
    assert C.stable_hash('a', 1) == C.stable_hash('a', 1) != C.stable_hash(1, 'a')
    assert C.stable_hash({'b': 1, 'a': 2}) == C.stable_hash({'a': 2, 'b': 1})  # key order does not matter
    assert len(C.stable_hash()) == 64


@pytest.mark.parametrize('junk', [b'\xff\xfe\x00\x01', b'{"value": ', b'[1, 2, 3]', b'"a string"', b'{"other": 1}', b'null'])
def test_diskcache_corrupt_entries_are_misses_with_a_warning(tmp_path, junk):
    c = C.DiskCache(tmp_path)
    k = c.key('m', 'p')
    c.set(k, {'reply': 'hi'}, model='m')
    assert c.get(k) == {'reply': 'hi'} and c.hits == 1
    c._file(k).write_bytes(junk)
    with pytest.warns(UserWarning, match='corrupt cache entry'): assert c.get(k, 'absent') == 'absent'
    assert c.misses == 1
    c.set(k, None)  # a stored None is a value, not a miss
    assert c.get(k, 'absent') is None and len(c) == 1


def test_diskcache_missing_key(tmp_path):
    c = C.DiskCache(tmp_path/'new')
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # an absent key is not worth a warning
        assert c.get(c.key('x'), 7) == 7
    assert c.key('x') not in c and c.misses == 1


def test_set_seed_repeats_numpy_and_torch():
    import torch
    C.set_seed(5); a, t = np.random.rand(3), torch.rand(3)
    C.set_seed(5); assert np.allclose(a, np.random.rand(3)) and torch.equal(t, torch.rand(3))
    C.set_seed(6); assert not np.allclose(a, np.random.rand(3))
