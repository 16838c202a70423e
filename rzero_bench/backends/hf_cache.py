"""KV-cache state of the ``hf`` backend's continuous batching.

- ``buffer_layer_class()``: a transformers cache layer that appends each step's keys/values into a
  preallocated buffer (with spare room) instead of re-concatenating the whole cache; the tensors
  attention sees are exactly a ``DynamicLayer``'s. It can also keep a subset of rows, drop leading
  columns and stack another batch's rows below its own (right-aligned, zero-padded on the left).
- ``DecodeBatch``: the rows being decoded together: their cache, 2D attention mask, next position
  ids and next-token logits; rows leave (``select``) and prefilled rows join (``merge``).

transformers and torch are imported only when these are used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DecodeBatch", "buffer_layer_class"]


def buffer_layer_class() -> Any:
    """A transformers cache layer that appends into a preallocated buffer instead of concatenating."""
    from transformers.cache_utils import DynamicLayer

    class _BufferLayer(DynamicLayer):  # type: ignore[misc]
        """``keys``/``values`` are views ``[:, :, :length]`` of buffers with spare room for new tokens.

        The values seen by attention are exactly those a ``DynamicLayer`` would hold; only the
        per-step copy of the whole cache (``torch.cat``) is avoided.
        """

        reserve = 64  # spare positions allocated beyond the current length
        buf_k: Any = None
        buf_v: Any = None
        keys: Any
        values: Any

        def lazy_initialization(self, key_states: Any, value_states: Any) -> None:
            super().lazy_initialization(key_states, value_states)
            self.buf_k = self.buf_v = None

        def _alloc(self, like: Any, batch: int, capacity: int, zero: bool) -> Any:
            import torch

            make = torch.zeros if zero else torch.empty
            return make((batch, like.shape[1], capacity, like.shape[3]), dtype=like.dtype, device=like.device)

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n = 0 if self.buf_k is None else self.keys.shape[-2]
            q = key_states.shape[-2]
            if self.buf_k is None or n + q > self.buf_k.shape[-2]:
                cap = n + q + max(self.reserve, n // 2)
                bk = self._alloc(key_states, key_states.shape[0], cap, zero=False)
                bv = self._alloc(value_states, value_states.shape[0], cap, zero=False)
                if n:
                    bk[:, :, :n] = self.keys
                    bv[:, :, :n] = self.values
                self.buf_k, self.buf_v = bk, bv
            self.buf_k[:, :, n : n + q] = key_states
            self.buf_v[:, :, n : n + q] = value_states
            self.keys = self.buf_k[:, :, : n + q]
            self.values = self.buf_v[:, :, : n + q]
            return self.keys, self.values

        def select_rows(self, idx: Any) -> None:
            n = self.keys.shape[-2]
            self.buf_k = self.buf_k.index_select(0, idx)
            self.buf_v = self.buf_v.index_select(0, idx)
            self.keys, self.values = self.buf_k[:, :, :n], self.buf_v[:, :, :n]

        def drop_left(self, first: int) -> None:
            self.buf_k, self.buf_v = self.buf_k[:, :, first:], self.buf_v[:, :, first:]
            self.keys, self.values = self.keys[:, :, first:], self.values[:, :, first:]

        def append_rows(self, other: Any) -> None:
            """Stack ``other``'s rows below ours, both right-aligned (left padding, zero-filled)."""
            a, b = self.keys.shape[-2], other.keys.shape[-2]
            n = max(a, b)
            rows_a, rows_b = self.keys.shape[0], other.keys.shape[0]
            cap = n + max(self.reserve, n // 2)
            for name, mine, theirs in (("k", self.keys, other.keys), ("v", self.values, other.values)):
                buf = self._alloc(mine, rows_a + rows_b, cap, zero=True)
                buf[:rows_a, :, n - a : n] = mine
                buf[rows_a:, :, n - b : n] = theirs
                setattr(self, "buf_" + name, buf)
            self.keys, self.values = self.buf_k[:, :, :n], self.buf_v[:, :, :n]

    return _BufferLayer


class DecodeBatch:
    """The rows being decoded together: their KV cache, 2D attention mask and next position ids.

    Rows are left-padded to a common cache length; the mask marks real tokens. Rows can be dropped
    (``select``) and a freshly prefilled batch can be appended (``merge``); leading columns that
    are padding in every row are cut away so the cache never grows wider than its longest row.
    """

    def __init__(self, rows: list[int], cache: Any, mask: Any, pos: Any, logits: Any) -> None:
        self.rows = rows  # row ids, in batch order
        self.cache = cache  # transformers Cache of _BufferLayer, [batch, heads, length, dim] per layer
        self.mask = mask  # [batch, length] long
        self.pos = pos  # [batch] long: position id of the next token of each row
        self.logits = logits  # [batch, vocab] float32: next-token logits

    def select(self, keep: list[int]) -> None:
        import torch

        idx = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        self.rows = [self.rows[b] for b in keep]
        for layer in self.cache.layers:
            layer.select_rows(idx)
        self.mask = self.mask.index_select(0, idx)
        self.pos = self.pos.index_select(0, idx)
        self.logits = self.logits.index_select(0, idx)
        self.trim()

    def trim(self) -> None:
        """Drop leading cache columns that are padding in every row."""
        import torch

        used = self.mask.any(dim=0)
        first = int(used.to(torch.int8).argmax()) if bool(used.any()) else 0
        if first > 0:
            self.mask = self.mask[:, first:]
            for layer in self.cache.layers:
                layer.drop_left(first)

    def merge(self, other: DecodeBatch) -> None:
        import torch
        import torch.nn.functional as F

        a, b = self.mask.shape[1], other.mask.shape[1]
        for la, lb in zip(self.cache.layers, other.cache.layers, strict=True):
            la.append_rows(lb)
        self.mask = torch.cat(
            [F.pad(self.mask, (max(0, b - a), 0)), F.pad(other.mask, (max(0, a - b), 0))], dim=0
        )
        self.pos = torch.cat([self.pos, other.pos])
        self.logits = torch.cat([self.logits, other.logits], dim=0)
        self.rows = self.rows + other.rows
        self.trim()
