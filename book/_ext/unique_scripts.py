"""A Sphinx extension: every page loads each of its scripts once.

sphinx-thebe 0.3.1 adds its inline configuration script (``const THEBE_JS_URL = ...``) after the builder exists,
and Sphinx 7.4 then lists it twice (once with the file name None, once with ''), so every page carried it twice and
the browser's console showed "Identifier 'THEBE_JS_URL' has already been declared". This drops the second copy of
any script whose file and attributes (an inline script's body included) equal an earlier one's, keeping the first
in its place.
"""
from __future__ import annotations


def script_key(script) -> tuple:
    """What makes two script entries the same: the file (None for an inline script) and every attribute."""
    filename = getattr(script, "filename", script) or None  # an inline script: None or ''
    attributes = getattr(script, "attributes", {}) or {}
    return filename, tuple(sorted((str(k), str(v)) for k, v in attributes.items()))


def unique_scripts(scripts: list) -> list:
    """``scripts`` without repeats, in their order."""
    seen, kept = set(), []
    for script in scripts:
        key = script_key(script)
        if key not in seen:
            seen.add(key)
            kept.append(script)
    return kept


def drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    if "script_files" in context:
        context["script_files"] = unique_scripts(context["script_files"])


def setup(app):
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
