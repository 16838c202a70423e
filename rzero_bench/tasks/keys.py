"""Reserved item fields that :func:`rzero_bench.tasks.data.load_docs` adds to every doc.

Their names start with ``_``: templates never see such fields (:mod:`rzero_bench.tasks.render`
drops them before rendering), so a dataset column can never collide with them.
"""

from __future__ import annotations

__all__ = ["DOC_ID_KEY", "CATEGORY_KEY"]

DOC_ID_KEY = "_doc_id"  # stable item id: the dataset's ``metadata.id_field``, BBEH's "<subtask>/<i>", or the row index
CATEGORY_KEY = "_category"  # the value of ``metadata.category_field`` as text (stratified --limit, per-category scores)
