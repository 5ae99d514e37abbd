"""Errors a user can act on. Each message names the problem and the fix; the CLI prints it in one line."""


class GanAugmentError(Exception):
    """Base class for every error this library raises on purpose."""


class DataError(GanAugmentError, ValueError):
    """The data given cannot be used (missing, unreadable, wrong shape, unknown class)."""


class ConfigError(GanAugmentError, ValueError):
    """A configuration value is unknown or out of range."""


class BackendNotFoundError(GanAugmentError, KeyError):
    """No installed plugin provides the backend asked for."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PluginError(GanAugmentError, RuntimeError):
    """A plugin is broken or two plugins claim one backend name."""


class CheckpointError(GanAugmentError, RuntimeError):
    """A checkpoint cannot be written or read."""


class WriteError(CheckpointError):
    """An output file (checkpoint, weights, config, grid, report) cannot be written: full disk,
    no permission, read-only folder. The previous file at that path is kept."""


class TrainingDiverged(GanAugmentError, RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class ModelLoadError(GanAugmentError, RuntimeError):
    """A saved model is missing, corrupted, of a newer format, or does not match its config."""
