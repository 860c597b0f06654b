"""A person in a browser: log in, see profile cards with live GPU counts, pick the GPU profile,
watch the progress messages, land in a working JupyterLab. Debian chromium via Playwright."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.services.e2e import mesos_config

ARTIFACTS = Path(os.environ.get("MESOSSPAWNER_ARTIFACTS", "test-artifacts"))

RECORD_PROGRESS = """
(() => {
  const Original = window.EventSource;
  if (!Original || Original.recorded) return;
  function Recording(url, options) {
    const source = new Original(url, options);
    source.addEventListener("message", (e) => {
      const log = JSON.parse(sessionStorage.getItem("progress") || "[]");
      log.push(JSON.parse(e.data));
      sessionStorage.setItem("progress", JSON.stringify(log));
    });
    return source;
  }
  Recording.prototype = Original.prototype;
  Recording.recorded = true;
  window.EventSource = Recording;
})();
"""


async def test_person_picks_gpu_profile_and_lands_in_notebook(
    mesos_kind, clusters, hub_factory, browser_page, homes, user
):
    cluster = clusters(mesos_kind)
    hub = await hub_factory(mesos_config(cluster.url, homes)).launch()
    user = user.name
    page = browser_page

    await page.goto(hub.url + "/hub/login?next=%2Fhub%2Fspawn")
    await page.fill("input#username_input", user)
    await page.fill("input#password_input", "any password")
    await page.click("#login_submit")
    await page.wait_for_url("**/hub/spawn")

    cards = page.locator(".mesosspawner-profile")
    assert await cards.count() == 3
    gpu_card = page.locator('.mesosspawner-profile[data-profile="gpu"]')
    assert await gpu_card.locator(".free-gpus").get_attribute("data-free-gpus") == "2"
    assert await gpu_card.locator(".profile-capacity").get_attribute("data-capacity") == "now"
    assert await page.locator("#profile-item-cpu").is_checked()  # the default is preselected
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"options-form-{mesos_kind}.png"), full_page=True)

    # Record every progress event the spawn-pending page receives (it may show them only
    # briefly before redirecting); sessionStorage survives the redirect to the notebook.
    await page.add_init_script(RECORD_PROGRESS)
    await page.check("#profile-item-gpu")
    await page.click("form#spawn_form [type=submit]")
    await page.wait_for_url(f"**/user/{user}/**", timeout=60_000)
    await page.wait_for_selector("#jp-main-dock-panel, .jp-LabShell", timeout=60_000)
    await page.screenshot(path=str(ARTIFACTS / f"notebook-{mesos_kind}.png"))

    events = json.loads(await page.evaluate("sessionStorage.getItem('progress') || '[]'"))
    messages = [e.get("message", "") for e in events]
    assert any(m.startswith("Request queued") for m in messages), messages
    assert any(m.startswith("Offer accepted on agent gpu-1") for m in messages), messages
    assert events and events[-1].get("ready") is True, events
    (task,) = [t for t in (await cluster.tasks()).values() if t["state"] == "TASK_RUNNING"]
    assert task["resources"]["gpus"] == 1
