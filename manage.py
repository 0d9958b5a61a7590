#!/usr/bin/env python
"""Django's command-line utility for the mlgov service."""

import os
import sys

from django.core.management import execute_from_command_line

from config.env import default_settings_module


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", default_settings_module())
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
