"""``care-viewer info`` through the real entry point."""
from __future__ import annotations

import json
import shutil

import numpy as np

from app.cli.info_cmd import KEYS
from app.cli.main import main


def test_info_json_keys_and_values(capsys, mr_dicom_dir):
    assert main(["info", str(mr_dicom_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out) == 1
    obj = out[0]
    assert set(obj) == set(KEYS) == {
        "series_uid", "modality", "description", "size", "spacing", "origin", "direction",
        "frames", "min", "max", "mean", "window", "errors", "orientation_labels", "spacing_source", "overlays",
        "modality_source", "modality_hint",
    }
    assert obj["modality"] == "MR" and obj["size"] == [256, 256, 25] and obj["errors"] == []
    assert np.allclose(obj["spacing"], [0.78125, 0.78125, 6.5])
    assert obj["direction"] == [1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0]
    assert obj["min"] == 0.0 and obj["max"] > obj["mean"] > 0
    assert set(obj["window"]) == {"center", "width", "name"}


def test_info_attributes_errors(capsys, tmp_path, mr_dicom_dir):
    for f in sorted(mr_dicom_dir.glob("*.dcm"))[:4]:
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "junk.dcm").write_bytes(b"junk" * 100)
    assert main(["info", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [e["reason"] for e in out[0]["errors"]] == ["not a DICOM file"]
    assert all(set(o) == set(KEYS) for o in out)


def test_info_exit_2_when_nothing_reads(capsys, tmp_path):
    (tmp_path / "junk.dcm").write_bytes(b"junk" * 100)
    assert main(["info", str(tmp_path / "junk.dcm"), "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out) == []
    assert "junk.dcm: not a DICOM file" in captured.err
    assert main(["info", str(tmp_path / "missing")]) == 2


def test_info_table(capsys, ct_dicom_dir):
    assert main(["info", str(ct_dicom_dir)]) == 0
    out = capsys.readouterr().out
    assert "512 × 512 × 48" in out and "CT" in out and "C -600  W 1500" in out
