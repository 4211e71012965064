"The shared training loop: convergence on a known answer, exact resume, complete checkpoints, early stopping, data forms."
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from hypothesis import given, settings, strategies as st

from genenet.train import (fit, predict, TrainResult, TensorData, as_loader, lr_lambda, load_checkpoint,
                           save_checkpoint, CheckpointError, CKPT_KEYS, split_batch, call_model)


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

W_TRUE, B_TRUE = torch.tensor([2., -3.]), 0.5

def toy(n=3000, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, generator=g)
    y = (torch.rand(n, generator=g) < torch.sigmoid(X @ W_TRUE + B_TRUE)).float()
    return X, y

def net(seed=1, p=0.2):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(p), nn.Linear(8, 1))


def test_logistic_regression_recovers_true_weights():
    X, y = toy()
    torch.manual_seed(0); m = nn.Linear(2, 1)
    r = fit(m, (X[:2500], y[:2500]), (X[2500:], y[2500:]), loss_fn='bce', epochs=12, lr=0.1, batch_size=100,
            optimizer='adam', progress=False)   # default schedule: linear decay after warmup
    assert isinstance(r, TrainResult)
    assert torch.allclose(m.weight.detach()[0], W_TRUE, atol=0.4) and abs(m.bias.item() - B_TRUE) < 0.35
    # the Bayes-optimal loss on this data is ~0.4; a trained model is close to it, an untrained one far above
    assert r.best_score < 0.45 and r.history.train_loss.iloc[0] > r.history.train_loss.iloc[-1]
    assert r.history.epoch.tolist() == list(range(1, 13))


def test_resume_after_interrupt_equals_uninterrupted(tmp_path):
    X, y = toy(1500)
    kw = dict(loss_fn='bce', epochs=4, lr=0.02, batch_size=128, warmup=0.25, schedule='cosine', seed=7,
              weight_decay=0.01, progress=False)
    full = fit(net(), (X, y), (X[:300], y[:300]), **kw)

    class Killed(Exception): pass
    def kill(epoch, row, model):
        if epoch == 1: raise Killed
    with pytest.raises(Killed): fit(net(), (X, y), (X[:300], y[:300]), ckpt_dir=tmp_path, callback=kill, **kw)
    assert load_checkpoint(tmp_path/'last.pt')['epoch'] == 1
    # resuming into a freshly initialised model with different weights must not matter
    resumed = fit(net(seed=99), (X, y), (X[:300], y[:300]), ckpt_dir=tmp_path, **kw)
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert np.allclose(full.history.drop(columns='seconds'), resumed.history.drop(columns='seconds'))
    assert full.best_epoch == resumed.best_epoch


def test_checkpoint_files_are_complete(tmp_path):
    X, y = toy(600)
    m = net()
    r = fit(m, (X, y), (X[:100], y[:100]), loss_fn='bce', epochs=3, lr=0.01, batch_size=64, ckpt_dir=tmp_path,
            progress=False)
    ck = load_checkpoint(tmp_path/'last.pt')
    assert set(CKPT_KEYS) <= set(ck)
    assert ck['epoch'] == 3 and len(ck['history']) == 3 and ck['stopped'] is False
    assert set(ck['model']) == set(m.state_dict())
    assert not all(torch.equal(ck['model'][k], v) for k, v in net().state_dict().items()), 'weights were trained'
    n_steps = 3*math.ceil(600/64)
    assert ck['scheduler']['last_epoch'] == n_steps
    assert all(s['step'].item() == n_steps for s in ck['optimizer']['state'].values())
    assert {'python', 'numpy', 'torch'} <= set(ck['rng'])
    assert ck['config']['lr'] == 0.01 and ck['config']['batch_size'] == 64
    best = load_checkpoint(tmp_path/'best.pt')
    assert best['epoch'] == r.best_epoch and set(best['model']) == set(m.state_dict())
    assert not list(Path(tmp_path).glob('.*.tmp')), 'no temporary files left behind'


def test_early_stopping_restores_best_weights(tmp_path):
    X, y = toy(2000)
    torch.manual_seed(0)
    big = nn.Sequential(nn.Linear(2, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1))
    r = fit(big, (X[:40], y[:40]), (X[1000:], y[1000:]), loss_fn='bce', epochs=300, lr=0.01, batch_size=20,
            patience=4, progress=False)
    assert r.stopped_early and len(r.history) == r.best_epoch + 4
    assert r.best_score == pytest.approx(r.history.valid_loss.min())
    p = torch.tensor(predict(big, X[1000:], activation='sigmoid')[:, 0])
    assert nn.functional.binary_cross_entropy(p, y[1000:]).item() == pytest.approx(r.best_score, abs=1e-5)


def test_monitor_metric_max_mode():
    X, y = toy(1000)
    acc = lambda yt, p: float(((p[:, 0] > 0.5) == yt).mean())
    r = fit(net(), (X[:800], y[:800]), (X[800:], y[800:]), loss_fn='bce', epochs=4, lr=0.02, batch_size=64,
            activation='sigmoid', metrics={'acc': acc}, monitor='acc', progress=False)
    assert r.monitor == 'valid_acc' and r.best_score == pytest.approx(r.history.valid_acc.max())
    assert r.best_epoch == int(r.history.epoch[r.history.valid_acc.idxmax()])


def test_data_forms_and_predict_order():
    X, y = toy(500)
    class DS(torch.utils.data.Dataset):
        def __len__(self): return len(X)
        def __getitem__(self, i): return X[i], y[i]
    class Dict(nn.Module):
        def __init__(self): super().__init__(); self.lin = nn.Linear(2, 1)
        def forward(self, x): return self.lin(x)
    for data in [(X, y), (X.numpy(), y.numpy()), DS(), {'x': X, 'labels': y},
                 torch.utils.data.DataLoader(DS(), batch_size=50, shuffle=True)]:
        torch.manual_seed(0); m = Dict()
        r = fit(m, data, loss_fn='bce', epochs=2, lr=0.05, batch_size=50, progress=False)
        assert len(r.history) == 2 and r.best_epoch is None and 'valid_loss' not in r.history
    p = predict(m, X)
    assert p.shape == (500, 1) and np.allclose(p, m(X).detach().numpy(), atol=1e-6)
    assert np.allclose(predict(m, (X, y), batch_size=7), p, atol=1e-6)
    assert np.allclose(predict(m, {'x': X, 'labels': y}), p, atol=1e-6)


def test_model_computing_its_own_loss_and_bf16():
    X, y = toy(800)
    class SelfLoss(nn.Module):
        def __init__(self): super().__init__(); self.lin = nn.Linear(2, 1)
        def forward(self, x, labels=None):
            logits = self.lin(x).squeeze(-1)
            out = {'logits': logits}
            if labels is not None: out['loss'] = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels)
            return out
    torch.manual_seed(0); m = SelfLoss()
    r = fit(m, {'x': X, 'labels': y}, {'x': X[:200], 'labels': y[:200]}, epochs=3, lr=0.05, batch_size=64,
            mixed_precision='bf16', progress=False)
    assert r.history.valid_loss.iloc[-1] < r.history.valid_loss.iloc[0] or r.history.valid_loss.iloc[-1] < 0.5
    assert predict(m, {'x': X[:5]}).shape == (5,)


def test_bad_inputs_raise():
    X, y = toy(50)
    frozen = nn.Linear(2, 1).requires_grad_(False)
    with pytest.raises(ValueError, match='trainable'): fit(frozen, (X, y), loss_fn='bce', epochs=1, progress=False)
    with pytest.raises(ValueError, match='valid_data'):
        fit(nn.Linear(2, 1), (X, y), loss_fn='bce', epochs=1, monitor='valid_loss', progress=False)
    with pytest.raises(KeyError): split_batch({'x': X}, True)
    with pytest.raises(ValueError): TensorData((X, y[:10]))
    nan = nn.Linear(2, 1); nn.init.constant_(nan.weight, float('nan'))
    with pytest.raises(FloatingPointError): fit(nan, (X, y), loss_fn='bce', epochs=1, progress=False)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 500), st.floats(0, 0.9), st.sampled_from(['constant', 'linear', 'cosine']))
def test_lr_lambda_properties(total, warmup, schedule):
    f = lr_lambda(total, warmup, schedule)
    v = [f(s) for s in range(total + 1)]
    assert all(0 <= x <= 1 for x in v)
    w = int(round(warmup*total))
    assert all(a < b for a, b in zip(v[:w], v[1:w+1])), 'warmup increases'
    if w < total: assert v[w] == 1.0
    assert all(a >= b for a, b in zip(v[w:], v[w+1:])), 'no increase after warmup'


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 60), st.integers(1, 17), st.integers(0, 5))
def test_loader_covers_every_row_once_per_epoch(n, bs, seed):
    dl = as_loader((torch.arange(n), torch.arange(n)*2), batch_size=bs, shuffle=True, seed=seed)
    rows = torch.cat([b[0] for b in dl])
    assert sorted(rows.tolist()) == list(range(n)) and len(dl) == math.ceil(n/bs)
    assert torch.equal(torch.cat([b[1] for b in dl]), torch.cat([b[0] for b in dl])*2)


def test_frozen_parameters_stay_out_of_checkpoints(tmp_path):
    X, y = toy(300)
    class Proj(nn.Module):
        "a trainable head on a frozen 'pretrained' body"
        def __init__(self):
            super().__init__(); torch.manual_seed(5)
            self.body = nn.Linear(2, 16).requires_grad_(False); self.head = nn.Linear(16, 1)
        def forward(self, x): return self.head(torch.relu(self.body(x)))
    m = Proj(); body = m.body.weight.clone()
    r = fit(m, (X, y), (X[:50], y[:50]), loss_fn='bce', epochs=2, lr=0.01, batch_size=64, ckpt_dir=tmp_path, progress=False)
    ck = load_checkpoint(tmp_path/'last.pt')
    assert set(ck['model']) == {'head.weight', 'head.bias'} and torch.equal(m.body.weight, body)
    r2 = fit(Proj(), (X, y), (X[:50], y[:50]), loss_fn='bce', epochs=3, lr=0.01, batch_size=64, ckpt_dir=tmp_path, progress=False)
    assert len(r2.history) == 3
    with pytest.raises(RuntimeError, match='does not fit'):
        fit(nn.Linear(2, 1), (X, y), loss_fn='bce', epochs=3, ckpt_dir=tmp_path, progress=False)


def test_default_schedule_is_hf_linear_decay():
    from transformers import get_linear_schedule_with_warmup
    X, y = toy(640)
    r = fit(net(), (X, y), loss_fn='bce', epochs=2, lr=0.01, batch_size=64, warmup=5, progress=False)
    assert r.history.lr.iloc[-1] == 0.0, 'decays to 0 at the last step'
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    hf = get_linear_schedule_with_warmup(opt, 7, 50)
    f, ours = lr_lambda(50, 7), []
    for s in range(50): ours.append(f(s)); assert opt.param_groups[0]['lr'] == pytest.approx(f(s)); opt.step(); hf.step()


def test_checkpoints_load_weights_only_and_hold_no_pickled_objects(tmp_path):
    X, y = toy(300)
    fit(net(), (X, y), loss_fn='bce', epochs=1, batch_size=64, ckpt_dir=tmp_path, progress=False)
    ck = torch.load(tmp_path/'last.pt', weights_only=True)   # raises if anything but tensors/plain values were stored
    assert torch.is_tensor(ck['rng']['numpy'][1]) and ck['epoch'] == 1


def test_damaged_checkpoint_names_file_and_remedy(tmp_path):
    X, y = toy(300)
    kw = dict(loss_fn='bce', epochs=2, batch_size=64, ckpt_dir=tmp_path, progress=False)
    fit(net(), (X, y), **{**kw, 'epochs': 1})
    last = tmp_path/'last.pt'
    data = bytearray(last.read_bytes())
    last.write_bytes(bytes(data[:len(data)//3]))   # truncated
    with pytest.raises(CheckpointError, match='resume=False') as e: fit(net(), (X, y), **kw)
    assert str(last) in str(e.value)
    r = fit(net(), (X, y), **{**kw, 'resume': False})
    assert len(r.history) == 2 and load_checkpoint(last)['epoch'] == 2
    last.write_bytes(b'not a checkpoint at all')
    with pytest.raises(CheckpointError, match=str(last)): load_checkpoint(last)
    with pytest.raises(FileNotFoundError): load_checkpoint(tmp_path/'nope.pt')


def test_crafted_checkpoint_cannot_run_code(tmp_path):
    import pickle
    marker = tmp_path/'pwned'
    class Evil:
        def __reduce__(self): return (open, (str(marker), 'w'))
    bad = tmp_path/'last.pt'
    torch.save({'model': Evil(), 'epoch': 1}, bad, pickle_module=pickle)
    with pytest.raises(CheckpointError, match='last.pt'): load_checkpoint(bad)
    X, y = toy(100)
    with pytest.raises(CheckpointError): fit(net(), (X, y), loss_fn='bce', epochs=1, ckpt_dir=tmp_path, progress=False)
    assert not marker.exists(), 'the crafted object was never built'
