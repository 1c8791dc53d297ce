"""Which copy of each distribution an overlay's interpreter imports, and what that breaks.

One job per module:

- :mod:`.model`: the layers as an ordered list of :class:`Layer` values, copies and distributions, and
  the pure rules that classify ``sys.path`` entries and pick the copy that wins;
- :mod:`.requirements`: Requires-Dist parsing and checking (``packaging``'s semantics, fast paths);
- :mod:`.probe`: one start of the overlay's interpreter for its ``sys.path``, marker environment and,
  when asked, wheel tags;
- :mod:`.scan`: ``*.dist-info``/``*.egg-info`` metadata read from disk, never importing a package;
- :mod:`.load`: :func:`load_layering`, which ties probe and scan together as a job sees them;
- :mod:`.present`: the JSON documents and aligned text of ``list`` and ``check``;
- :mod:`.imports`: ``check --imports``, modules imported in fresh interpreters.

The names other modules use are re-exported here, each loaded from its module on first use (PEP 562):
``list`` then never imports the requirement checker nor ``check --imports``' machinery, and the overlay's
interpreter (the probe) starts before the scanning and presenting code is even imported.
"""

import importlib

# name -> the submodule defining it.
_WHERE = {
    "imports": ("ImportResult", "import_targets", "run_imports"),
    "load": ("effective_distributions", "job_pythonpath", "load_layering"),
    "model": (
        "BASE", "INTERPRETER", "KINDS", "OTHER", "OVERLAY", "USER", "Copy", "Distribution", "Layer", "Layering",
        "canonical_name", "classify_entries", "label_layers", "resolve", "without_build_leftovers",
    ),
    "present": ("JSON_FORMAT", "align", "colour_enabled", "copy_json", "distribution_json", "problem_json", "pythonpath_note"),
    # Not `probe` itself: a lazily loaded package cannot keep a function named as its submodule.
    "probe": ("PROBE_TIMEOUT", "Probe", "finish_probe", "start_probe"),
    "requirements": (
        "Edge", "Problem", "Requirement", "_satisfies", "_valid_version", "_version", "active_requirements",
        "check_requirements", "parse_requirement", "shadowed_dependents",
    ),
    "scan": ("Found", "copy_of", "editable_source", "modules_from_files", "read_headers", "scan_entry", "top_level_modules"),
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
