"""Settings for the Celery worker the integration tests start: the test settings plus a few overrides.

The worker is another process; it gets the test process's keys through the environment
(portal.settings_test puts them there) and the test database through DATABASE_URL.
"""

import os

from portal.settings_test import *  # noqa: F403

# The SSRF test runs a worker that allows no private network at all.
if "ALERTS_TEST_ALLOWED_NETWORKS" in os.environ:
    WEBHOOK_ALLOWED_PRIVATE_NETWORKS = [n for n in os.environ["ALERTS_TEST_ALLOWED_NETWORKS"].split(",") if n]
