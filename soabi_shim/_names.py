"""Names shared by the start-up hook, the library and the CLI (floor 1: a leaf).

No imports of the package and no I/O here: the start-up hook, ``facts``,
``plugins`` and the CLI all read these, so none of them has to import
another module above its floor to learn a name.
"""

#: Set to any non-empty value: the start-up hook does nothing at all.
DISABLE_ENV = "SOABI_SHIM_DISABLE"
#: Set: the start-up hook installs the import fallback but never writes.
FALLBACK_ONLY_ENV = "SOABI_SHIM_FALLBACK_ONLY"
#: The entry-point group third-party plugins register under.
ENTRY_POINT_GROUP = "soabi_shim"
#: The package directory (inside a site directory) that holds the stamp.
PACKAGE_DIR = "soabi_shim"
#: The start-up hook's files at the site directory's top level.
PTH_NAME = "soabi_shim-startup.pth"
START_NAME = "soabi_shim-startup.start"

# --- the stamp -------------------------------------------------------------
# The stamp is an empty file in ``<site>/soabi_shim/`` whose *name* carries
# the site directory's ``st_mtime_ns`` as it was after the last heal, so the
# ``.pth`` line tests it with one ``os.path.exists`` (no ``try``, no read).
# Two kinds: ``_ok.<ns>`` (healed, nothing to do) and ``_fb.<ns>`` (the heal
# left problems: install the import fallback only).  It is listed in
# soabi-shim's own RECORD, so uninstalling soabi-shim removes it.

#: Prefix of the stamp that says "nothing to do".
STAMP_OK = "_ok."
#: Prefix of the stamp that says "the heal left problems: install the fallback only".
STAMP_FALLBACK = "_fb."


def stamp_name(mtime_ns: int, problems: bool = False) -> str:
    """The stamp's file name for a site directory whose mtime is ``mtime_ns``."""
    return f"{STAMP_FALLBACK if problems else STAMP_OK}{mtime_ns}"


def is_stamp_name(name: str) -> bool:
    """Whether ``name`` (a file name in ``<site>/soabi_shim/``) is a stamp."""
    return name.startswith((STAMP_OK, STAMP_FALLBACK)) and name[4:].isdigit()
