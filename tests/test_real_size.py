"""Real-size benchmark tooling: the real-shape configs and gpu_check's behaviour without CUDA."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.devtools import real_configs

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("size", ["2b", "8b"])
def test_real_shape_matches_published_parameter_count(size):
    n = real_configs.count_params(size)  # built on the meta device: no RAM
    published = real_configs.PUBLISHED_PARAMS[size]
    assert abs(n - published) / published < 0.02, (size, n, published)


def test_real_config_has_the_published_layers_and_widths():
    config = real_configs.build_config("8b")
    t, v = config.text_config, config.vision_config
    assert (t.num_hidden_layers, t.hidden_size, t.num_attention_heads, t.num_key_value_heads) == (28, 3584, 28, 4)
    assert (t.intermediate_size, t.vocab_size, len(t.layer_types)) == (18944, 151674, 28)
    assert (v.num_hidden_layers, v.hidden_size, v.num_attention_heads, v.patch_size[0], v.image_size[0]) == (
        24, 1024, 16, 14, 448)


def _gpu_check(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_gpu_check_help():
    proc = _gpu_check("--help")
    assert proc.returncode == 0, proc.stderr
    assert "--tokens" in proc.stdout and "--dtype" in proc.stdout


def test_gpu_check_without_cuda_exits_with_a_message():
    proc = _gpu_check("--tokens", "4")
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "no CUDA GPU" in proc.stdout
    assert "Traceback" not in proc.stderr
