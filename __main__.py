"""ai-infra-matrix: load the stack config, build the platform, export its outputs."""

import pulumi

from platform_stack import build_platform_yielding
from settings import SettingsError, from_pulumi_config

try:
    settings = from_pulumi_config()
except SettingsError as error:
    for line in error.lines():
        pulumi.log.error(line)
    # RunError ends the program with its message alone: no traceback for a config mistake.
    raise pulumi.RunError(f"invalid stack config: {len(error.problems)} problem(s), listed above") from None


async def main() -> pulumi.Inputs:
    """The platform, built as an async entry point so the engine can start on the first
    registrations while the rest is still being built; its outputs are the stack's."""
    platform = await build_platform_yielding(settings)
    return dict(platform.outputs)


pulumi.run(main)
