"""The decoded-size cap follows the machine's RAM (a quarter of it at 4 bytes per voxel, never
below 200 megapixels); CARE_MAX_PIXELS overrides it."""
from __future__ import annotations

import pytest

from app.study import limits
from app.study.limits import MIN_MAX_PIXELS, max_pixels, over_cap

GIB = 2**30
CT_2000 = (512, 512, 2000)  # a real long CT: 524 megapixels, ~1 GB as int16


@pytest.fixture
def ram(monkeypatch):
    """Set the physical memory the cap sees (bytes, or None: unreadable)."""
    monkeypatch.delenv("CARE_MAX_PIXELS", raising=False)

    def set_ram(total: int | None, container: int | None = None) -> None:
        monkeypatch.setattr(limits, "physical_memory", lambda: total)
        monkeypatch.setattr(limits, "cgroup_memory_limit", lambda: container)

    return set_ram


@pytest.mark.parametrize("gib, expected", [(24, 24 * GIB // 16), (64, 64 * GIB // 16), (128, 128 * GIB // 16),
                                           (2, MIN_MAX_PIXELS), (1, MIN_MAX_PIXELS)])
def test_default_cap_is_a_quarter_of_ram_at_4_bytes_never_below_200_mp(ram, gib, expected):
    ram(gib * GIB)
    assert max_pixels() == expected


def test_unreadable_ram_keeps_the_200_mp_floor(ram):
    ram(None)
    assert max_pixels() == MIN_MAX_PIXELS
    assert "over the 200 megapixels limit (the minimum default; CARE_MAX_PIXELS=<n>M raises it)" \
        in over_cap((20000, 20000))


def test_a_2000_slice_ct_opens_on_a_24_gb_workstation_but_10_gvoxels_are_refused(ram):
    ram(24 * GIB)
    assert over_cap(CT_2000, "series declares") is None
    reason = over_cap((1000, 1000, 10_000), "series declares")  # 10 G voxels declared
    assert reason == ("series declares 1000 x 1000 x 10000 = 10,000 megapixels, over the 1,611 megapixels limit "
                      "(a quarter of this machine's 24 GiB RAM at 4 bytes per voxel; CARE_MAX_PIXELS=<n>M raises it)")
    assert "\n" not in reason


def test_the_2000_slice_ct_is_over_the_cap_of_a_small_machine(ram):
    ram(4 * GIB)  # 268 megapixels: the volume and its copies would not fit
    assert "over the 268.4 megapixels limit" in over_cap(CT_2000)


def test_env_overrides_the_ram_default(ram, monkeypatch):
    ram(24 * GIB)
    monkeypatch.setenv("CARE_MAX_PIXELS", "100M")
    assert max_pixels() == 100_000_000  # lower than the floor too: the user asked for it
    assert over_cap(CT_2000) == ("declares 512 x 512 x 2000 = 524.3 megapixels, over the 100 megapixels limit "
                                 "set by CARE_MAX_PIXELS (a larger value raises it)")
    monkeypatch.setenv("CARE_MAX_PIXELS", "20G")
    assert max_pixels() == 20 * 10**9 and over_cap((1000, 1000, 10_000)) is None
    for bad in ("nonsense", "0", "-5M", "1e400"):
        monkeypatch.setenv("CARE_MAX_PIXELS", bad)
        assert max_pixels() == 24 * GIB // 16, bad


def test_physical_memory_reads_sysconf_then_psutil(monkeypatch):
    import psutil

    total = limits.physical_memory()
    assert total == psutil.virtual_memory().total

    def no_sysconf(name):
        raise ValueError(name)

    monkeypatch.setattr(limits.os, "sysconf", no_sysconf)
    assert limits.physical_memory() == psutil.virtual_memory().total


def test_a_container_limit_below_the_ram_sets_the_cap(ram):
    """In a container limited to 8 GiB on a 128 GiB host, the kernel kills the app at 8 GiB."""
    ram(128 * GIB, container=8 * GIB)
    assert max_pixels() == 8 * GIB // 16
    assert "a quarter of this container's 8 GiB memory limit at 4 bytes per voxel" in over_cap((1000, 1000, 10_000))
    ram(24 * GIB, container=64 * GIB)  # a limit above the RAM changes nothing
    assert max_pixels() == 24 * GIB // 16


@pytest.mark.parametrize("v2, v1, expected", [
    ("max\n", None, None), ("8589934592\n", None, 8 * GIB), (None, "9223372036854771712\n", None),
    (None, "4294967296\n", 4 * GIB), (None, None, None), ("garbage", None, None)])
def test_cgroup_limit_files(tmp_path, monkeypatch, v2, v1, expected):
    files = []
    for name, text in (("memory.max", v2), ("memory.limit_in_bytes", v1)):
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        files.append(str(path))
    monkeypatch.setattr(limits, "CGROUP_LIMIT_FILES", tuple(files))
    assert limits.cgroup_memory_limit() == expected
