"""A command-line flag and a ``--set`` of the same key must agree.

``pbtnas run simulated --population 8 --set population=16`` used to run with 8 (flags are applied
after ``--set``) without a word, though the user asked for both. Both are refused, naming the two,
unless they mean the same value (``--steps 5 --set steps=5.0``).
"""

from __future__ import annotations

from pbtnas.config import RunConfig, apply_overrides
from pbtnas.errors import ConfigError
from pbtnas.options import coerce_value, option_specs

#: the flag of each config key whose flag spelling differs from ``--key-with-dashes``
FLAG_NAMES = {"ray_address": "--address", "device": "--device"}


def refuse_disagreeing(assignments: list[str], flags: dict[str, object]) -> None:
    """Raise one :class:`ConfigError` when a flag (``flags``: config key -> value as the key's
    declaration makes it, ``device`` for ``task.device``) and a ``--set`` in ``assignments`` give the same key different values.
    A ``--set`` value of the wrong kind is left for the config's own check to name."""
    requested = apply_overrides({}, list(assignments))
    section = requested.get("task")
    task: dict = section if isinstance(section, dict) else {}
    fields = option_specs(RunConfig)
    for key, flag in flags.items():
        if flag is None:
            continue
        if key == "device":
            if "device" in task and str(task["device"]) != str(flag):
                raise ConfigError(f"--device {flag} and --set task.device={task['device']} disagree: give the device once")
            continue
        if key not in requested or key not in fields:
            continue
        try:
            given = coerce_value(RunConfig, key, requested[key])
        except ConfigError:
            continue
        if given != flag:
            raise ConfigError(f"{flag_name(key)} {flag} and --set {key}={requested[key]} disagree: give {key} once")


def flag_name(key: str) -> str:
    """The command-line flag of a config key (``--population``, ``--address`` for ray_address)."""
    return FLAG_NAMES.get(key, "--" + key.replace("_", "-"))
