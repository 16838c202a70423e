"""Jinja2 rendering of the task templates (``doc_to_text``, ``doc_to_target``, ``doc_to_choice``).

Templates run in an immutable sandbox with ``StrictUndefined``: a field missing from the data is a
one-line :class:`~rzero_bench.errors.DataError` naming the fields the data does have, never an empty
string. Fields whose names start with ``_`` (:mod:`rzero_bench.tasks.keys`) are hidden from templates.
Filters: ``last_boxed`` (content of the last ``\\boxed{}``), ``strip_dollars`` (drop ``$`` math
delimiters), ``number`` (27.0 -> "27"); the global ``letters`` is :data:`CHOICE_LETTERS`.
Compiled templates are cached by source text.
"""

from __future__ import annotations

from typing import Any

from rzero_bench.errors import DataError
from rzero_bench.tasks.keys import DOC_ID_KEY

__all__ = ["CHOICE_LETTERS", "compile_template", "render_template"]

CHOICE_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_ENV: Any = None


def _last_boxed_filter(text: Any) -> str:
    from rzero_bench.parsing import last_boxed

    found = last_boxed(str(text))
    if found is None:
        raise ValueError("no \\boxed{} in the text")
    return found


def _strip_dollars(text: Any) -> str:
    s = str(text).strip()
    while s.startswith("$") and s.endswith("$") and len(s) >= 2:
        s = s[1:-1].strip()
    return s.replace("$", "")


def _number(value: Any) -> str:
    """Render 27.0 as 27 and keep other values as text."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _env() -> Any:
    global _ENV
    if _ENV is None:
        from jinja2 import StrictUndefined
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
        env.filters["last_boxed"] = _last_boxed_filter
        env.filters["strip_dollars"] = _strip_dollars
        env.filters["number"] = _number
        env.globals["letters"] = CHOICE_LETTERS
        _ENV = env
    return _ENV


_TEMPLATE_CACHE: dict[str, Any] = {}


def compile_template(source: str, field: str) -> Any:
    """The compiled template for ``source``; a syntax error is a ``ValueError`` naming ``field`` and the line."""
    tpl = _TEMPLATE_CACHE.get(source)
    if tpl is None:
        from jinja2 import TemplateSyntaxError

        try:
            tpl = _env().from_string(source)
        except TemplateSyntaxError as e:
            raise ValueError(f"{field}: Jinja syntax error line {e.lineno}: {e.message}") from None
        _TEMPLATE_CACHE[source] = tpl
    return tpl


def render_template(source: str, doc: dict[str, Any], task: str, field: str) -> str:
    """Render ``source`` with the doc's public fields; any failure is a one-line ``DataError``."""
    from jinja2 import TemplateError, UndefinedError

    tpl = compile_template(source, field)
    try:
        return str(tpl.render(**{k: v for k, v in doc.items() if not k.startswith("_")}))
    except UndefinedError as e:
        fields = ", ".join(sorted(k for k in doc if not k.startswith("_")))
        raise DataError(
            f"task {task}: {field} uses a field missing from the data ({e.message}); the data has: {fields}"
        ) from None
    except (TemplateError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise DataError(f"task {task}: {field} failed on doc {doc.get(DOC_ID_KEY, '?')}: {e}") from None
