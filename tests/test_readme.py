"""The README's shell blocks marked ``<!-- runnable -->`` run as written, in order, in a
fresh shell at the root of a copy of the repository, against the local PostgreSQL and
Redis.

Two names are swapped so that the test touches nothing of a developer's: the database
``smartup_local`` becomes a throwaway one (dropped at the end), and the simulator's port
8765 a free one; the Redis database becomes the tests' own (``TEST_REDIS_URL``). The copy
shares this checkout's ``.venv``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.helpers import REDIS_URL, ROOT, admin_sql, free_port, without_our_settings

RUNNABLE = re.compile(r"<!-- runnable -->\n```sh\n(.*?)```", re.DOTALL)


def runnable_blocks(readme: str) -> list[str]:
    return [match.group(1) for match in RUNNABLE.finditer(readme)]


def _copy_repository(target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (item.decode() for item in listed)):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to((ROOT / ".venv").resolve())


def test_the_readme_marks_the_blocks_a_newcomer_runs_first():
    blocks = runnable_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 2
    assert any("make demo" in block for block in blocks)
    assert any("cp .env.example .env" in block and "migrate.py" in block for block in blocks)


@pytest.mark.slow
def test_the_readme_runnable_blocks_run_as_written(tmp_path: Path):
    copy = tmp_path / "repo"
    _copy_repository(copy)
    database = f"smartup_test_readme_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    port = str(free_port())

    def swapped(text: str) -> str:
        text = text.replace("smartup_local", database).replace("8765", port)
        return text.replace("redis://127.0.0.1:6379/0", REDIS_URL)

    example = copy / ".env.example"
    example.write_text(swapped(example.read_text()))
    environ = without_our_settings("VIRTUAL_ENV")
    outputs = []
    try:
        for block in runnable_blocks((copy / "README.md").read_text()):
            done = subprocess.run(
                ["bash", "-e", "-c", swapped(block)],
                cwd=copy,
                env=environ,
                capture_output=True,
                text=True,
                timeout=600,
            )
            outputs.append(done.stdout)
            assert done.returncode == 0, f"{block}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    finally:
        admin_sql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    demo, own = outputs[0], outputs[1]
    assert "SUCCESS" in demo
    assert re.search(r"^run 1 SUCCESS in ", own, re.MULTILINE), own


def test_the_readme_describes_the_project_not_how_it_was_made():
    text = (ROOT / "README.md").read_text().lower()
    for word in ("seed", "session", "this round", "branches", "merged in"):
        assert not re.search(rf"\b{word}\b", text), word
