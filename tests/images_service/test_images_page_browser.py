"""A person in Chromium: logs in through the hub, opens /services/images/, is told why a hostile
package is refused, builds an image while the log streams in, copies its pinned reference,
starts a server with it and lands in JupyterLab. Screenshots are saved in the test's tmp dir."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.images_service.hubsetup import PIP_PACKAGE, PREFIX, images_hub

# Also kept where the other browser tests keep theirs: pytest prunes old tmp dirs.
ARTIFACTS = Path(os.environ.get("MESOSSPAWNER_ARTIFACTS", "test-artifacts"))
pytestmark = pytest.mark.timeout(2400)


async def test_person_builds_watches_log_and_spawns_in_browser(
    hub_factory,
    clusters,
    homes,
    test_users,
    registry,
    notebook_image,
    browser_page,
    tmp_path,
):
    hub = await images_hub(hub_factory, clusters, homes, registry, notebook_image)
    user = test_users[2]
    page = browser_page
    page.set_default_timeout(60_000)

    await page.goto(hub.url + "/hub/login?next=" + quote(PREFIX))
    await page.fill("input#username_input", user.name)
    await page.fill("input#password_input", "any password")
    await page.click("#login_submit")
    await page.wait_for_url(f"**{PREFIX}", timeout=60_000)
    assert await page.text_content("#who") == user.name
    assert await page.locator("#base option").all_inner_texts() == ["base-notebook"]

    # A hostile string: a clear message naming it, and no build.
    await page.fill("#pip", "tabulate;rm -rf /")
    await page.click("#build-button")
    await page.wait_for_selector("#build-message.error")
    assert "'tabulate;rm'" in await page.text_content("#build-message")
    assert await page.locator("#build-progress").is_hidden()

    # The real build: the log arrives while it runs.
    await page.fill("#pip", PIP_PACKAGE)
    await page.click("#build-button")
    await page.wait_for_function(
        """() => document.getElementById('build-status').dataset.status === 'building'
                 && document.getElementById('build-log').textContent.split('\\n').length > 5""",
        timeout=600_000,
    )
    live_lines = (await page.text_content("#build-log")).splitlines()
    await page.wait_for_selector(
        "#build-status[data-status=done], #build-status[data-status=failed]", timeout=1_500_000
    )
    log = await page.text_content("#build-log")
    assert await page.get_attribute("#build-status", "data-status") == "done", log
    assert len(log.splitlines()) > len(live_lines)
    assert "pushed " in log
    await page.wait_for_selector("#spawn-link")
    message = await page.text_content("#build-message.ok")
    pinned = message.split("Built and pushed: ", 1)[1].strip()
    digest = pinned.split("@", 1)[1]

    row = page.locator(f'tr.image-row[data-digest="{digest}"]')
    assert await row.count() == 1
    assert PIP_PACKAGE in await row.locator(".packages").text_content()
    copy = row.locator("button.copy-ref")
    await copy.click()
    # The page marks the button once the copy is done (the clipboard API is asynchronous).
    await page.wait_for_function(
        "(b) => b.dataset.copied !== undefined", arg=await copy.element_handle(), timeout=10_000
    )
    assert await copy.get_attribute("data-copied") == pinned

    shot = tmp_path / "images-service-page.png"
    await page.screenshot(path=str(shot), full_page=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    kept = shutil.copy(shot, ARTIFACTS / shot.name)
    print(f"\nscreenshot of the images page: {shot} (copy: {Path(kept).resolve()})")

    await page.click("#spawn-link")
    await page.wait_for_url(f"**/user/{user.name}/**", timeout=300_000)
    await page.wait_for_selector("#jp-main-dock-panel, .jp-LabShell", timeout=120_000)
    lab = tmp_path / "images-service-lab.png"
    await page.screenshot(path=str(lab))
    print(f"screenshot of JupyterLab on the built image: {lab}")

    code, model = await hub.api("GET", f"/users/{user.name}")
    server = model["servers"][""]
    assert server["ready"] and server["user_options"]["profile"] == "my-images"
