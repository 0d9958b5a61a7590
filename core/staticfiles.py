"""Static files as the embedded setup serves them.

Once `manage.py collectstatic` has run, pages name every static file by its content hash and
WhiteNoise serves the gzip copy with a year's caching (whitenoise's CompressedManifestStaticFilesStorage).
Before that (a fresh checkout) there is no manifest, and the strict manifest storage would fail every
page that names a static file; nor does an old manifest name a file added since. This storage then
names the unhashed file, which WhiteNoise serves from the source tree (WHITENOISE_USE_FINDERS), and
logs a warning that collectstatic is due.
"""

from __future__ import annotations

import logging

from whitenoise.storage import CompressedManifestStaticFilesStorage

logger = logging.getLogger(__name__)


class HashedWhenCollectedStorage(CompressedManifestStaticFilesStorage):
    def stored_name(self, name: str) -> str:
        if not self.hashed_files:  # no staticfiles.json yet: collectstatic has not run
            return name
        try:
            return super().stored_name(name)
        except ValueError:  # a file added since the last collectstatic
            logger.warning("%s is not in staticfiles.json; run manage.py collectstatic", name)
            return name
