"""ConfigMap and Secret volumes as the kubelet's atomic writer lays them out and updates them.

A volume directory holds the data in a timestamped directory (`..2026_01_01_00_00_00.000000001`),
a `..data` symlink to it, and each key as a symlink through it (`bins.csv -> ..data/bins.csv`).
An update writes a new timestamped directory, renames a new `..data` symlink over the old one
(one atomic step) and removes the old directory; the key symlinks never change.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

FIRST_STAMP = "..2026_01_01_00_00_00.000000001"


def lay_out(directory: Path, files: dict[str, bytes], stamp: str = FIRST_STAMP) -> None:
    """A fresh volume directory holding `files` (key -> content)."""
    (directory / stamp).mkdir(parents=True)
    for name, data in files.items():
        (directory / stamp / name).write_bytes(data)
        os.symlink(os.path.join("..data", name), directory / name)
    os.symlink(stamp, directory / "..data")


def update(directory: Path, files: dict[str, bytes]) -> None:
    """What the kubelet does when a mounted ConfigMap or Secret changes: the keys of `files`
    get new content, the others are kept."""
    old = os.readlink(directory / "..data")
    now = time.time_ns()
    new = "..{}.{:09d}".format(time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime(now // 10**9)), now % 10**9)
    (directory / new).mkdir()
    for path in (directory / old).iterdir():
        shutil.copy2(path, directory / new / path.name)
    for name, data in files.items():
        (directory / new / name).write_bytes(data)
        if not (directory / name).is_symlink():
            os.symlink(os.path.join("..data", name), directory / name)
    os.symlink(new, directory / "..data_tmp")
    os.replace(directory / "..data_tmp", directory / "..data")
    shutil.rmtree(directory / old)
