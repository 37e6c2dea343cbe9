"""Errors that reach the user as one clear line instead of a traceback."""


class PbtnasError(Exception):
    """Base for every error caused by user input (config, genome, checkpoint, data path).

    The CLI prints its message as ``error: <message>`` and exits with status 2.
    """


class ConfigError(PbtnasError):
    """A config key, value or preset name is wrong."""


class GenomeError(PbtnasError):
    """A genome does not fit its search space."""


class SearchSpaceError(PbtnasError, ValueError):
    """A search space or gene is malformed (options given as a string, duplicate names, ...)."""


class TaskContractError(PbtnasError):
    """A task breaks a rule the engine relies on (see :func:`pbtnas.check_task`)."""


class CheckpointError(PbtnasError):
    """A checkpoint file is missing, truncated, corrupt or of another format."""


class RunFileError(CheckpointError):
    """A file of a run directory or an export folder is damaged (truncated, not UTF-8, not the
    JSON it should be), is a symbolic link, or names a path that leads outside the folder."""


class DataError(PbtnasError):
    """A data set cannot be found or read."""


class MissingDependencyError(PbtnasError):
    """An optional dependency is not installed; the message names the extra to install."""


class MemberDiverged(Exception):
    """A member's loss became non-finite; the runner gives it fitness -inf and carries on."""


def require(module: str, extra: str):
    """Import an optional dependency or raise a one-line install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(f"{module} is not installed: install it with  pip install 'pbtnas[{extra}]'") from exc


def error_headline(text: str, limit: int = 300) -> str:
    """One line saying what went wrong: the first line of an error text, joined with the next
    when the first only introduces it (torch's ``Error(s) in loading state_dict for Net:``)."""
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    if not lines:
        return ""
    head = lines[0]
    if head.endswith(":") and len(lines) > 1 and not lines[1].startswith("Traceback"):
        head = f"{head} {lines[1]}"
    return head[:limit]
