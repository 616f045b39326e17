"""scripts/system-deps.sh, run by `make test`: silent when all is there, installs as root, else
prints the command. `id` and `apt-get` are fakes on PATH; nothing is installed for real."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "system-deps.sh"
BASH = shutil.which("bash") or "/bin/bash"

# Logs each call; `install` puts the packages where the script looks (FAKE_ROOT) when told to.
FAKE_APT = """#!/bin/sh
echo "DEBIAN_FRONTEND=$DEBIAN_FRONTEND apt-get $*" >> "$FAKE_ROOT/apt.log"
if [ "$1" = install ] && [ -n "$FAKE_APT_WORKS" ]; then
    printf '#!/bin/sh\\n' > "$FAKE_ROOT/chromium"
    printf '#!/bin/sh\\n' > "$FAKE_ROOT/bin/fake-redis-server"
    chmod +x "$FAKE_ROOT/chromium" "$FAKE_ROOT/bin/fake-redis-server"
fi
"""


def run(root: Path, *, uid: int, present: bool, apt_works: bool = False) -> tuple[int, str, str]:
    """Run the script as user `uid` with the fakes under `root`; (exit code, stderr, apt log)."""
    bin_dir = root / "bin"
    bin_dir.mkdir(exist_ok=True)
    fakes = {bin_dir / "id": f"#!/bin/sh\necho {uid}\n", bin_dir / "apt-get": FAKE_APT}
    if present:
        fakes |= {root / "chromium": "#!/bin/sh\n", bin_dir / "fake-redis-server": "#!/bin/sh\n"}
    for path, text in fakes.items():
        path.write_text(text)
        path.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "AVHUB_CHROMIUM": str(root / "chromium"),
        "AVHUB_REDIS_SERVER": "fake-redis-server",
        "FAKE_ROOT": str(root),
        "FAKE_APT_WORKS": "1" if apt_works else "",
    }
    env.pop("DEBIAN_FRONTEND", None)
    done = subprocess.run(
        [BASH, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    log = root / "apt.log"
    return done.returncode, done.stderr, log.read_text() if log.exists() else ""


def test_everything_present_is_silent_and_never_calls_apt(tmp_path: Path) -> None:
    assert run(tmp_path, uid=0, present=True) == (0, "", "")


def test_missing_as_a_user_prints_the_command_and_fails(tmp_path: Path) -> None:
    code, err, apt = run(tmp_path, uid=1000, present=False)
    assert code == 1
    assert (
        "  sudo apt-get update && sudo apt-get install -y --no-install-recommends"
        " chromium redis-server\n"
    ) in err
    assert apt == ""


def test_missing_as_root_is_installed_with_apt_get(tmp_path: Path) -> None:
    code, err, apt = run(tmp_path, uid=0, present=False, apt_works=True)
    assert code == 0, err
    assert apt.splitlines() == [
        "DEBIAN_FRONTEND=noninteractive apt-get update -q",
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends"
        " chromium redis-server",
    ]


def test_still_missing_after_apt_get_fails(tmp_path: Path) -> None:
    code, err, _ = run(tmp_path, uid=0, present=False, apt_works=False)
    assert code == 1
    assert "still missing after apt-get install: chromium redis-server" in err
