"""ai-infra-matrix: load the stack config, build the platform, export its outputs."""

import pulumi

from platform_stack import build_platform
from settings import SettingsError, from_pulumi_config

try:
    settings = from_pulumi_config()
except SettingsError as error:
    for line in error.lines():
        pulumi.log.error(line)
    # RunError ends the program with its message alone: no traceback for a config mistake.
    raise pulumi.RunError(f"invalid stack config: {len(error.problems)} problem(s), listed above") from None

for key, value in build_platform(settings).outputs.items():
    pulumi.export(key, value)
