"""The front door: the README's first command, from a fresh clone, used the way a person does.

`bash scripts/demo.sh` runs as a subprocess from a `git clone` of this checkout's HEAD (the real
command, set-up included), and a browser drives it: log in, read each profile's capacity line,
start the CPU, Spark and GPU profiles, see JupyterLab, type `id -u; pwd` into a JupyterLab
terminal (the person's own account and home), stop. Two people hold both GPUs; a third sees the
wait in the form and on the progress page, and starts once the admin (from /hub/admin) stops
one of them; the form's line changes while it stays open. Ctrl-C, as a terminal sends it, leaves
no process and no temporary directory. Screenshots of the form and the progress page go to
test-artifacts/. Run as root (the demo makes a Unix account per person).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from mesosspawner.localmesos.testing import RawScheduler, command_task, framework_info
from mesosspawner.testing.net import free_port
from tests.services.browser import chromium_page

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("MESOSSPAWNER_ARTIFACTS", "test-artifacts"))
ADMIN = "fd-admin"
ALICE, BOB, CAROL = "fd-alice", "fd-bob", "fd-carol"
ACCOUNTS = {name: f"demo-{name}" for name in (ALICE, BOB, CAROL)}


# ---------------------------------------------------------------------------- the demo process


def _editable_target() -> str | None:
    """Where the machine's `mesosspawner` install points (the demo must not re-point it)."""
    code = (
        "import importlib.metadata as m\n"
        "try: print(m.distribution('mesosspawner').read_text('direct_url.json') or '')\n"
        "except m.PackageNotFoundError: print('')"
    )
    out = subprocess.run(["python3", "-c", code], capture_output=True, text=True, cwd="/")
    return out.stdout.strip() or None


def _remove_accounts() -> None:
    for account in ACCOUNTS.values():
        with contextlib.suppress(KeyError):
            pw = pwd.getpwnam(account)
            subprocess.run(["userdel", "--remove", pw.pw_name], capture_output=True)


def _sandbox_processes(workdir: str) -> list[str]:
    """Processes the demo started that are still there: anything naming the workdir, or
    running as one of the test's demo accounts."""
    uids = set()
    for account in ACCOUNTS.values():
        with contextlib.suppress(KeyError):
            uids.add(pwd.getpwnam(account).pw_uid)
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes()
            uid = entry.stat().st_uid
        except OSError:
            continue
        if workdir.encode() in environ or workdir in cmdline or uid in uids:
            left.append(f"{entry.name} (uid {uid}): {cmdline[:150]}")
    return left


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def _master_state(mesos: str) -> dict:
    with urllib.request.urlopen(f"{mesos}/master/state", timeout=5) as response:
        return json.loads(response.read())


async def _refused_by_demo_mesos(mesos: str, user: str) -> str:
    """What the demo's localmesos answers a stranger's framework launching ``id`` as ``user``:
    the status reason of a TASK_ERROR (or the state, if it ran)."""
    s = RawScheduler(mesos)
    try:
        await s.subscribe(framework_info(user=user, name=f"stranger-{user}"))
        offer = (await s.offers())[0]
        task = command_task(offer, f"stranger-{user}", "id")
        task["command"]["user"] = user
        await s.accept([offer["id"]["value"]], [task])
        status = await s.update(f"stranger-{user}")
        assert "--allow-root-tasks" in status["message"] or "--task-users" in status["message"]
        return status.get("reason") if status["state"] == "TASK_ERROR" else status["state"]
    finally:
        with contextlib.suppress(Exception):
            await s.call({"type": "TEARDOWN"})
        await s.close()


# ---------------------------------------------------------------------------- a person's steps


async def log_in(page, hub: str, name: str) -> None:
    await page.goto(f"{hub}/hub/logout")
    await page.goto(f"{hub}/hub/login?next=%2Fhub%2Fspawn")
    await page.fill("input#username_input", name)
    await page.fill("input#password_input", "any password")
    await page.click("#login_submit")
    await page.wait_for_url("**/hub/spawn")


async def capacity_line(page, profile: str) -> str:
    card = page.locator(f'.mesosspawner-profile[data-profile="{profile}"]')
    return (await card.locator(".capacity-line").inner_text()).strip()


async def wait_for_line(page, profile: str, pattern: str, timeout: float = 45) -> str:
    """The capacity line of ``profile`` once it matches ``pattern``, without reloading."""
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline:
        line = await capacity_line(page, profile)
        if re.search(pattern, line):
            return line
        await page.wait_for_timeout(500)
    raise AssertionError(f"{profile}: the form still says {line!r}, not /{pattern}/")


async def submit(page, profile: str) -> None:
    await page.check(f"#profile-item-{profile}")
    await page.click("form#spawn_form [type=submit]")


async def lands_in_lab(page, name: str) -> None:
    await page.wait_for_url(f"**/user/{name}/lab**", timeout=180_000)
    await page.wait_for_selector(".jp-LabShell", timeout=120_000)


async def terminal_says(page, hub: str, name: str) -> str:
    """Open a JupyterLab terminal, type `id -u; pwd`, return what it shows. The terminal's
    screen-reader mode (a JupyterLab setting) puts its rows in the DOM, where they can be read."""
    cookies = await page.context.cookies(f"{hub}/user/{name}/lab")
    xsrf = next(c["value"] for c in cookies if c["name"] == "_xsrf")
    setting = f"{hub}/user/{name}/lab/api/settings/@jupyterlab/terminal-extension:plugin"
    response = await page.request.put(
        setting,
        data=json.dumps({"raw": json.dumps({"screenReaderMode": True})}),
        headers={"X-XSRFToken": xsrf, "Content-Type": "application/json"},
    )
    assert response.status == 204, await response.text()
    # Load JupyterLab again with that setting, and a fresh layout (?reset): the launcher.
    await page.goto(f"{hub}/user/{name}/lab?reset")
    card = page.locator('.jp-LauncherCard[title="Start a new terminal session"]')
    await card.click(timeout=120_000)
    terminal = page.locator(".jp-Terminal")
    await terminal.locator(".xterm-accessibility-tree").wait_for()
    rows = terminal.locator(".xterm-accessibility-tree")
    deadline = time.monotonic() + 30
    while "$" not in await rows.inner_text() and time.monotonic() < deadline:
        await page.wait_for_timeout(300)  # the shell's first prompt
    await terminal.click()
    await page.keyboard.type("id -u; pwd\n")
    text = ""
    while time.monotonic() < deadline + 30:
        text = await rows.inner_text()
        if re.search(r"^/\S+\s*$", text, re.M):
            break
        await page.wait_for_timeout(300)
    await page.keyboard.type("exit\n")  # closes the tab: the next server's layout has none
    return text


async def shows_own_account(page, hub: str, name: str) -> None:
    account = pwd.getpwnam(ACCOUNTS[name])
    text = await terminal_says(page, hub, name)
    lines = [line.strip() for line in text.splitlines()]
    assert str(account.pw_uid) in lines, text
    assert account.pw_dir in lines, text
    assert account.pw_uid != 0 and account.pw_dir == f"/home/{ACCOUNTS[name]}"


async def stop_own_server(page, hub: str) -> None:
    """Stop My Server on the hub's home page, then back to the form once the stop is done
    (while it is stopping, /hub/spawn says so instead)."""
    await page.goto(f"{hub}/hub/home")
    await page.click("#stop")
    await page.locator("#start").wait_for(state="visible", timeout=60_000)
    deadline = time.monotonic() + 60
    while True:
        await page.goto(f"{hub}/hub/spawn")
        if await page.locator(".mesosspawner-profile").count() == 3:
            return
        assert time.monotonic() < deadline, f"no form at {page.url} a minute after the stop"
        await page.wait_for_timeout(1000)


# ---------------------------------------------------------------------------- the test


async def test_readme_first_command_from_a_fresh_clone(tmp_path, browser_page):
    if os.getuid() != 0:
        pytest.skip("the demo makes a Unix account per person only as root")
    _remove_accounts()  # "made on first spawn": none before
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    port, mesos_port = free_port(), free_port()
    hub, mesos = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{mesos_port}"
    install_before = _editable_target()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    log_path = tmp_path / "demo.log"
    log = open(log_path, "w")  # noqa: SIM115
    started = time.monotonic()
    # Its own process group, as a shell gives a foreground job: Ctrl-C reaches that group.
    demo = subprocess.Popen(
        ["bash", "scripts/demo.sh", "--port", str(port), "--mesos-port", str(mesos_port)]
        + ["--admin", ADMIN],
        cwd=clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    workdir = ""
    page = browser_page
    try:
        while _get(f"{hub}/hub/login") != 200:
            assert demo.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() - started < 600, "no login page after 600 s"
            time.sleep(0.2)
        first_page = time.monotonic() - started
        print(f"\ntime to first page (warm: the notebook environment exists): {first_page:.1f} s")
        while "Ctrl-C stops everything" not in (output := log_path.read_text()):
            assert time.monotonic() - started < 660, output[-3000:]  # the demo's own banner
            time.sleep(0.2)
        assert "demo: ready in" in output, output
        workdir = re.search(r"^demo: hub database and Mesos sandboxes in (\S+) ", output, re.M)[1]
        assert _editable_target() == install_before, "the demo re-pointed the machine's install"
        assert _get(f"{mesos}/") == 200  # the master's address is a page, not a 404
        # Anyone on this machine can reach the demo's localmesos, which runs as root: it runs
        # tasks only as the demo's own accounts, never as root or anyone else.
        assert await _refused_by_demo_mesos(mesos, "root") == "REASON_TASK_UNAUTHORIZED"
        assert await _refused_by_demo_mesos(mesos, "nobody") == "REASON_TASK_UNAUTHORIZED"

        # --- alice: the form, each profile, her own account and home in a terminal -------
        await log_in(page, hub, ALICE)
        assert await page.locator(".mesosspawner-profile").count() == 3
        assert await capacity_line(page, "cpu") == "Room free now — starts now"
        assert await capacity_line(page, "gpu") == "2 of 2 GPUs free — starts now"
        assert await capacity_line(page, "spark") == "Room free now — starts now"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        form_png = (ARTIFACTS / "demo-options-form.png").resolve()
        await page.screenshot(path=str(form_png), full_page=True)
        print(f"screenshot of the form: {form_png}")
        with pytest.raises(KeyError):
            pwd.getpwnam(ACCOUNTS[ALICE])
        for profile in ("cpu", "spark", "gpu"):
            await submit(page, profile)
            await lands_in_lab(page, ALICE)
            await shows_own_account(page, hub, ALICE)
            if profile != "gpu":
                await stop_own_server(page, hub)
        tasks = [
            t
            for f in _master_state(mesos)["frameworks"]
            for t in f["tasks"]
            if t["state"] == "TASK_RUNNING"
        ]
        # Safe names stay as they are in Mesos: "fd-alice", not "fd-2dalice".
        assert [t["name"] for t in tasks] == [f"jupyter {ALICE}"], tasks
        assert tasks[0]["resources"]["gpus"] == 1

        # --- bob takes the second GPU: the demo's GPU agent can run both ------------------
        await log_in(page, hub, BOB)
        assert await capacity_line(page, "gpu") == "1 of 2 GPUs free — starts now"
        await submit(page, "gpu")
        await lands_in_lab(page, BOB)

        # --- carol: every GPU busy; she is told she will wait, and for how long ------------
        await log_in(page, hub, CAROL)
        line = await capacity_line(page, "gpu")
        assert line == "All 2 GPUs are in use — you will wait, up to 5 minutes", line
        assert await capacity_line(page, "cpu") == "Room free now — starts now"  # no GPU talk
        await submit(page, "gpu")
        await page.wait_for_url(f"**/hub/spawn-pending/{CAROL}**")
        waiting = page.locator("#progress-message", has_text="It waits up to 5 minutes")
        await waiting.wait_for(timeout=30_000)
        assert "1 GPU to become free" in await waiting.inner_text()
        progress_png = (ARTIFACTS / "demo-progress-waiting.png").resolve()
        await page.click("#progress-details summary")
        await page.screenshot(path=str(progress_png), full_page=True)
        print(f"screenshot of the progress page: {progress_png}")

        async with chromium_page(tmp_path / "admin-profile") as admin:
            # --- the admin opens /hub/admin and stops bob's server: carol's spawn goes on ----
            await log_in(admin, hub, ADMIN)
            await admin.goto(f"{hub}/hub/admin")
            row = admin.locator(f'[data-testid="user-row-{BOB}"]')
            await row.get_by_role("button", name="Stop Server").click()
            await row.get_by_role("button", name="Start Server").wait_for(timeout=60_000)
            await lands_in_lab(page, CAROL)
            # No "Spawn failed" was ever shown while she waited.
            assert "Spawn failed" not in await page.content()

            # --- a form left open follows the cluster (no reload) -------------------------
            await admin.goto(f"{hub}/hub/spawn")
            await wait_for_line(admin, "gpu", r"^All 2 GPUs are in use")
            await stop_own_server(page, hub)  # carol stops; the admin's form sees it
            line = await wait_for_line(admin, "gpu", r"^1 of 2 GPUs free — starts now$")
            print(f"the open form now says: {line}")

        # --- Ctrl-C: everything stops once, nothing is left -------------------------------
        assert demo.poll() is None
        os.killpg(demo.pid, signal.SIGINT)
        code = demo.wait(120)
        output = log_path.read_text()
        assert code == 0, output[-3000:]
        assert output.count("demo: stopping") == 1, output[-3000:]
        assert output.count("initiating shutdown") == 1, output[-3000:]
        assert "Task was destroyed" not in output and "Traceback" not in output, output[-3000:]
        assert f"demo: stopped; removed {workdir}" in output, output[-2000:]
        assert not Path(workdir).exists()
        assert _sandbox_processes(workdir) == []
        assert _get(f"{hub}/hub/login") == 0 and _get(f"{mesos}/") == 0
    except BaseException:
        with contextlib.suppress(Exception):
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = (ARTIFACTS / "demo-failure.png").resolve()
            await page.screenshot(path=str(shot), full_page=True)
            print(f"page at the failure ({page.url}): {shot}")
        raise
    finally:
        log.close()
        if demo.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(demo.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                demo.wait(90)
        if demo.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(demo.pid, signal.SIGKILL)
        if workdir:
            for line in _sandbox_processes(workdir):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(line.split()[0]), signal.SIGKILL)
        _remove_accounts()
        if _editable_target() != install_before:
            print(f"WARNING: the machine's mesosspawner install changed: {install_before}")
