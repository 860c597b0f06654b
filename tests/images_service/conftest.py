"""The e2e fixtures (real hub, proxy, localmesos) for the images-service tests."""

from tests.e2e.conftest import _needs_proxy, homes, hub_factory, localmesos_proc  # noqa: F401
from tests.services.browser import browser_page  # noqa: F401  (fixture)
