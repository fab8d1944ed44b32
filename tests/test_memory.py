"""memory.give_back: what a large phase freed goes back to the system before the next phase."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

# In a fresh process: Arrow arrays of ~200 MB made and freed, resident memory (VmRSS, MB) at each point.
FREED_THEN_GIVEN_BACK = textwrap.dedent(
    """
    import json, re
    import pyarrow as pa
    from cognito_migration import memory

    def rss():
        return int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) // 1024

    base = rss()
    chunks = [pa.array([f"user-{i}-{j}" for i in range(2000)]) for j in range(3000)]
    held = rss()
    del chunks
    freed = rss()
    memory.give_back()
    print(json.dumps({"base": base, "held": held, "freed": freed, "given_back": rss()}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="resident memory is read from /proc")
def test_memory_a_phase_freed_is_given_back_to_the_system() -> None:
    done = subprocess.run([sys.executable, "-c", FREED_THEN_GIVEN_BACK], capture_output=True, text=True, check=True)
    mb = json.loads(done.stdout)

    grew = mb["held"] - mb["base"]
    assert grew > 100, mb
    assert mb["freed"] - mb["base"] > grew / 2, f"the allocators gave back on their own, so nothing is tested: {mb}"
    assert mb["given_back"] - mb["base"] < grew / 2, f"give_back left most of it with the allocators: {mb}"
