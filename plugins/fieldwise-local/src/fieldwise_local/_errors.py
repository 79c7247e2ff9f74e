"""The errors this plugin raises, under the core's hierarchy so callers catch them as usual.

Each message names the command or setting that fixes the problem.
"""

from __future__ import annotations

from fieldwise.exceptions import ConfigurationError, FieldwiseError


class ModelNotInstalledError(ConfigurationError):
    """The default local model file is missing or damaged: `fieldwise local pull` fixes it."""


class ServerStartError(ConfigurationError):
    """The embedded llama.cpp server did not start or did not become ready."""


class PullError(FieldwiseError):
    """Fetching or checking the model file failed (network, registry, checksum)."""
