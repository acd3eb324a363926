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
#: The ``sys.modules`` marker that stops a venv's second ``.pth`` pass.
PTH_SEEN_MARK = "soabi_shim._pth_seen"
