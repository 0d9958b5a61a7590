"""Static files as the embedded setup serves them.

Once `manage.py collectstatic` has run, pages name every static file by its content hash and
WhiteNoise serves the gzip copy with a year's caching (whitenoise's CompressedManifestStaticFilesStorage).
Before that (a fresh checkout) there is no manifest, and the strict manifest storage would fail every
page that names a static file; nor does an old manifest name a file added since. This storage then
names the unhashed file, which WhiteNoise serves from the source tree (WHITENOISE_USE_FINDERS), and
logs a warning, once per file, that collectstatic is due. Names of files that exist nowhere (WhiteNoise
asks for the files that minified scripts' source maps mention) are passed through without a word.
"""

from __future__ import annotations

import logging

from django.contrib.staticfiles import finders
from whitenoise.storage import CompressedManifestStaticFilesStorage

logger = logging.getLogger(__name__)


class HashedWhenCollectedStorage(CompressedManifestStaticFilesStorage):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.uncollected: set[str] = set()

    def stored_name(self, name: str) -> str:
        if not self.hashed_files:  # no staticfiles.json yet: collectstatic has not run
            return name
        try:
            return super().stored_name(name)
        except ValueError:  # not in the manifest: added since the last collectstatic, or no file at all
            if name not in self.uncollected:
                self.uncollected.add(name)
                if finders.find(name):
                    logger.warning("%s is not in staticfiles.json; run manage.py collectstatic", name)
            return name
