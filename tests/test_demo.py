"""`make demo` itself: scripts/demo.py as a subprocess, the whole story on a real anvil."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.chain
def test_the_demo_tells_the_whole_story_and_leaves_nothing_running() -> None:
    """THREATS row 15 end to end: after `vault revoke`, company A is refused 403 revoked
    at once, while company B (auto-approved by a rule) was served."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-2000:]
    for line in (
        "Owner address: 0x",
        "what approving means",
        "[company A] received, receipt verified",
        "[company B] grant #2 active: relayed the owner's signed approval",
        "Revoked grant 1",
        "[company A] refused: 403 revoked",
        "[company A] withdrew a refund of",
        "Withdrew",
        "The access log verifies",
        "Demo complete",
    ):
        assert line in out, line
    assert "nothing left running" in out
    leftover = subprocess.run(["pgrep", "-f", "vault-demo-"], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "a demo process is still running"
