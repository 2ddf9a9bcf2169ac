"""Ray resources as users give them, and a missing `ray` extra named in one line."""

from __future__ import annotations

import sys

import pytest

from tr2m_cli.cluster import RayResources, Workers, import_ray
from tr2m_cli.errors import InputError, MissingExtraError


@pytest.mark.parametrize(
    ("given", "expected"),
    [(8, (8, 8)), ("8", (8, 8)), ("2,8", (2, 8)), (" 2, 8 ", (2, 8)), ((1, 3), (1, 3)), (Workers(2, 4), (2, 4))],
)
def test_workers_are_a_count_or_a_range(given, expected):
    workers = Workers.parse(given)
    assert (workers.minimum, workers.maximum) == expected
    assert str(workers) == (str(expected[0]) if expected[0] == expected[1] else f"{expected[0]},{expected[1]}")


@pytest.mark.parametrize("bad", ["0", "8,2", "a", "1,2,3", "-1", ""])
def test_bad_worker_counts_are_one_line_errors(bad):
    with pytest.raises(InputError, match="workers"):
        Workers.parse(bad)


def test_resources_check_gpus_and_cpus():
    assert RayResources(workers="1,4", gpus_per_worker=0.5).workers == Workers(1, 4)
    with pytest.raises(InputError, match="gpus-per-worker"):
        RayResources(gpus_per_worker=-1)
    with pytest.raises(InputError, match="CPUs per worker"):
        RayResources(cpus_per_worker=0)


def test_without_ray_the_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without the extra sees
    with pytest.raises(MissingExtraError, match=r"pip install 'tr2m\[ray\]'"):
        import_ray()
