"""An edit applied incrementally gives exactly what a fresh load of the files gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from _repo import BASE, write_repo
from hypothesis import given
from hypothesis import strategies as st

from layercfg import Fleet, RepositoryError, layers, load_fleet

GROUP = "match: {glob}\npriority: {priority}\nconfig:\n  interval: {interval}\n"
TYPED = "match: 'lab-*'\nconfig:\n  device_type: jetson\n"

# One edit: (file, text), where None deletes the file.
EDITS = st.one_of(
    st.tuples(
        st.sampled_from(["lab-1", "lab-2", "rpi-1", "edge-7"]).map(
            lambda host: f"overrides/devices/{host}.yaml"
        ),
        st.one_of(
            st.none(),
            st.sampled_from(["interval: 3\n", "", "device_type: raspberry_pi\n"]),
        ),
    ),
    st.tuples(
        st.sampled_from(["overrides/groups/a.yaml", "overrides/groups/b.yaml"]),
        st.one_of(
            st.none(),
            st.builds(
                GROUP.format,
                glob=st.sampled_from(["'lab-*'", "'*-1'", "'rpi-?'"]),
                priority=st.integers(1, 3),
                interval=st.integers(2, 9),
            ),
        ),
    ),
    st.tuples(
        st.just("profiles/jetson.yaml"),
        st.sampled_from(
            ["device_type: jetson\n", "device_type: jetson\ninterval: 4\n"]
        ),
    ),
)


def _snapshot(fleet: Fleet) -> tuple[object, ...]:
    served = {d.hostname: fleet.resolve(d.hostname) for d in fleet.devices()}
    return (
        fleet.revision,
        fleet.devices(),
        {host: r.body for host, r in served.items() if r is not None},
        fleet.resolve("lab-77") and fleet.resolve("lab-77").body,  # glob only
    )


def _apply(root: Path, file: str, text: str | None) -> Path:
    path = root / file
    if text is None:
        path.unlink(missing_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path


@given(edits=st.lists(EDITS, min_size=1, max_size=6))
def test_incremental_reload_equals_fresh_load(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[str, str | None]]
) -> None:
    root = write_repo(
        tmp_path_factory.mktemp("repo"),
        {
            **BASE,
            "overrides/groups/typed.yaml": TYPED,
            "overrides/devices/rpi-1.yaml": "device_type: raspberry_pi\n",
        },
    )
    fleet = load_fleet(root)
    pending: set[Path] = set()  # as the server does: failed files are read again
    failure: RepositoryError | None = None

    for file, text in edits:
        pending.add(_apply(root, file, text))
        try:
            fleet = fleet.reload(pending)
        except RepositoryError as exc:
            failure = exc
        else:
            pending, failure = set(), None

    if failure is None:
        assert _snapshot(fleet) == _snapshot(load_fleet(root))
    else:
        with pytest.raises(RepositoryError) as fresh:
            load_fleet(root)
        assert set(fresh.value.problems) == set(failure.problems)


def test_parallel_first_load_equals_serial_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {
        **BASE,
        "overrides/groups/typed.yaml": TYPED,
        **{
            f"overrides/devices/lab-{i}.yaml": f"interval: {i % 7 + 1}\n"
            for i in range(60)
        },
    }
    root = write_repo(tmp_path, files)
    serial = _snapshot(load_fleet(root))

    monkeypatch.setattr(layers, "_PARALLEL_FILES", 8)
    parallel = _snapshot(load_fleet(root))

    assert parallel == serial


def test_parallel_first_load_reports_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {
        **BASE,
        "overrides/groups/typed.yaml": TYPED,
        **{f"overrides/devices/lab-{i}.yaml": "interval: 2\n" for i in range(60)},
        "overrides/devices/lab-7.yaml": "interval: 2\ninterval: 3\n",
    }
    root = write_repo(tmp_path, files)
    monkeypatch.setattr(layers, "_PARALLEL_FILES", 8)

    with pytest.raises(RepositoryError) as caught:
        load_fleet(root)

    assert [str(p) for p in caught.value.problems] == [
        "overrides/devices/lab-7.yaml:2: duplicate key 'interval' (first set on line 1)"
    ]
