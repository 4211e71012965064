import os
import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')

from genenet.core import data_root


@pytest.fixture(scope='session')
def root():
    "The data root; tests that need the real mirror skip with a reason when it is absent."
    r = data_root()
    if not (r/'SOURCES.md').exists():
        pytest.skip(f'offline data mirror not found at {r}')
    return r
