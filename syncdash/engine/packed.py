"""A re-sync batch's raw records as one blob, for the trip from the read-ahead child to the run's process.

On a re-sync the writer types only the rows SQLite finds new or changed (about 2% of them): unmarshalling
every record into lists of strings there cost ~0.7 us a row, most of the writer's time on an unchanged
re-run. The child sends the records back to back with their end offsets, so the writer builds Python
objects only for the records it reads: records split from lines of text (the CSV reader's SplitRecords)
travel as those lines (~0.05 us a row to pack), any others marshalled one by one (~0.5 us).
"""

from __future__ import annotations

import marshal
from array import array
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import Any

# (lines joined, their end offsets as array "q" bytes, the delimiter) or (marshalled records, end offsets, "")
Packed = tuple[Any, bytes, str]


def pack(records: Sequence[Any]) -> Packed:
    texts, delimiter = getattr(records, "texts", None), getattr(records, "delimiter", None)
    if texts is not None and isinstance(delimiter, str) and delimiter and len(texts) == len(records):
        return "".join(texts), array("q", accumulate(map(len, texts))).tobytes(), delimiter
    parts = list(map(marshal.dumps, records))
    return b"".join(parts), array("q", accumulate(map(len, parts))).tobytes(), ""


class PackedRecords(Sequence[Any]):
    """Read-only list view of packed records; each is split or unmarshalled when it is read."""

    def __init__(self, packed: Packed) -> None:
        self.data, self.delimiter = packed[0], packed[2]
        self.ends = array("q")
        self.ends.frombytes(packed[1])
        if not self.delimiter:
            self.data = memoryview(self.data)

    def __len__(self) -> int:
        return len(self.ends)

    def _one(self, start: int, end: int) -> Any:
        if self.delimiter:
            text = self.data[start:end]
            return text.split(self.delimiter) if text else []  # a blank line is no fields, as csv.reader says
        return marshal.loads(self.data[start:end])

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self.ends)
            if i < 0:
                raise IndexError(i)
        end = self.ends[i]
        return self._one(self.ends[i - 1] if i else 0, end)

    def __iter__(self) -> Iterator[Any]:
        start = 0
        for end in self.ends:
            yield self._one(start, end)
            start = end
