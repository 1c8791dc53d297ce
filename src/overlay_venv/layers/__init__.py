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

The names other modules use are re-exported here.
"""

from .imports import ImportResult, import_targets, run_imports
from .load import effective_distributions, job_pythonpath, load_layering
from .model import (
    BASE,
    INTERPRETER,
    KINDS,
    OTHER,
    OVERLAY,
    USER,
    Copy,
    Distribution,
    Layer,
    Layering,
    canonical_name,
    classify_entries,
    label_layers,
    overlay_python,
    resolve,
    without_build_leftovers,
)
from .present import JSON_FORMAT, align, colour_enabled, copy_json, distribution_json, problem_json, pythonpath_note
from .probe import PROBE_TIMEOUT, Probe, finish_probe, probe, start_probe
from .requirements import (
    Edge,
    Problem,
    Requirement,
    _satisfies,
    _valid_version,
    _version,
    active_requirements,
    check_requirements,
    parse_requirement,
    shadowed_dependents,
)
from .scan import Found, copy_of, editable_source, modules_from_files, read_headers, scan_entry, top_level_modules

__all__ = [
    "BASE", "INTERPRETER", "KINDS", "OTHER", "OVERLAY", "PROBE_TIMEOUT", "USER", "JSON_FORMAT",
    "Copy", "Distribution", "Edge", "Found", "ImportResult", "Layer", "Layering", "Probe", "Problem", "Requirement",
    "_satisfies", "_valid_version", "_version",
    "active_requirements", "align", "canonical_name", "check_requirements", "classify_entries", "colour_enabled",
    "copy_json", "copy_of", "distribution_json", "editable_source", "effective_distributions", "finish_probe",
    "import_targets", "job_pythonpath", "label_layers", "load_layering", "modules_from_files", "overlay_python",
    "parse_requirement", "probe", "problem_json", "pythonpath_note", "read_headers", "resolve", "run_imports",
    "scan_entry", "shadowed_dependents", "start_probe", "top_level_modules", "without_build_leftovers",
]  # fmt: skip
