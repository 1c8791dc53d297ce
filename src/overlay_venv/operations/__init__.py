"""Operations: one module per job a command does, each deciding and returning what it did.

Commands (``overlay_venv.commands``) parse options, call one operation and render its result; the
operations call the installers (:mod:`overlay_venv.backends`), the layers, the record and the lock
format. :mod:`.lock` makes a lock, :mod:`.apply_lock` installs one (``create --from``, ``sync``),
:mod:`.rebuild` rebuilds from the recorded requests.
"""
