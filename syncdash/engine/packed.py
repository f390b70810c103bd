"""A re-sync batch's raw records as one blob, for the trip from the read-ahead child to the run's process.

On a re-sync the writer types only the rows SQLite finds new or changed (about 2% of them): unmarshalling
every record into lists of strings there cost ~0.7 us a row, most of the writer's time on an unchanged
re-run. The child marshals each record on its own and sends them concatenated with their end offsets, so
the writer builds Python objects only for the records it reads.
"""

from __future__ import annotations

import marshal
from array import array
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import Any

Packed = tuple[bytes, bytes]  # the records marshalled back to back, their end offsets (array "q")


def pack(records: Sequence[Any]) -> Packed:
    parts = list(map(marshal.dumps, records))
    return b"".join(parts), array("q", accumulate(map(len, parts))).tobytes()


class PackedRecords(Sequence[Any]):
    """Read-only list view of packed records; each is unmarshalled when it is read."""

    def __init__(self, packed: Packed) -> None:
        self.blob = memoryview(packed[0])
        self.ends = array("q")
        self.ends.frombytes(packed[1])

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self.ends)
        start = self.ends[i - 1] if i else 0
        return marshal.loads(self.blob[start:self.ends[i]])

    def __iter__(self) -> Iterator[Any]:
        start = 0
        blob, loads = self.blob, marshal.loads
        for end in self.ends:
            yield loads(blob[start:end])
            start = end
