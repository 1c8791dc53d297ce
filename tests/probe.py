"""Print the state a shell hands to programs as one JSON line: ``@@{...}``.

Run as ``python3 probe.py LABEL`` with whatever ``python3`` the shell finds on PATH, so the line also
says which interpreter that was and which ``basepkg`` it imports. Works on Python 3.9 and newer.
"""

import json
import os
import sys

label = sys.argv[1]
try:
    import basepkg

    version = basepkg.__version__
except ImportError:
    version = None
print(
    "@@"
    + json.dumps(
        {
            "label": label,
            "env": dict(os.environ),
            "PYTHONPATH": os.environ.get("PYTHONPATH"),
            "PATH": os.environ.get("PATH"),
            "VIRTUAL_ENV": os.environ.get("VIRTUAL_ENV"),
            "VIRTUAL_ENV_PROMPT": os.environ.get("VIRTUAL_ENV_PROMPT"),
            "executable": sys.executable,
            "prefix": sys.prefix,
            "basepkg": version,
            "sys_path": sys.path,
        }
    )
)
