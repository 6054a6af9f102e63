"""A binary buddy allocator (the Linux page allocator's scheme) over ``2**total_order`` pages.

Free blocks live in one set per order; allocating order ``k`` takes the smallest free block of
order >= k and splits it, freeing a block merges it with its buddy (``start ^ (1 << order)``)
as long as the buddy is free at the same order.

Example::

    b = BuddyAllocator(total_order=4, max_order=2)     # 16 pages, blocks of at most 4
    blk = b.alloc(1)                                   # 2 pages
    b.free_pages                                       # -> 14
    b.release(blk, 1); b.free_pages                    # -> 16
"""

import numpy as np


class BuddyAllocator:
    """Pages ``0 .. 2**total_order - 1``; block orders ``0 .. max_order``."""

    def __init__(self, total_order: int = 14, max_order: int = 10) -> None:
        if not 0 <= max_order <= total_order:
            raise ValueError(f"need 0 <= max_order ({max_order}) <= total_order ({total_order})")
        self.max_order = max_order
        self.n_pages = 1 << total_order
        self.free: list[set[int]] = [set() for _ in range(max_order + 1)]
        self.free[max_order] = set(range(0, self.n_pages, 1 << max_order))
        self.free_pages = self.n_pages

    def alloc(self, order: int) -> int | None:
        """Start page of a free block of ``2**order`` pages, or None if no block is large enough."""
        free = self.free
        for o in range(order, self.max_order + 1):
            if free[o]:
                blk = free[o].pop()
                while o > order:
                    o -= 1
                    free[o].add(blk + (1 << o))
                self.free_pages -= 1 << order
                return blk
        return None

    def release(self, blk: int, order: int) -> None:
        """Return a block; merges with free buddies."""
        self.free_pages += 1 << order
        free = self.free
        while order < self.max_order:
            buddy = blk ^ (1 << order)
            if buddy in free[order]:
                free[order].discard(buddy)
                blk &= ~(1 << order)
                order += 1
            else:
                break
        free[order].add(blk)

    def free_counts(self) -> np.ndarray:
        """Free blocks per order (what /proc/buddyinfo shows)."""
        return np.fromiter((len(s) for s in self.free), dtype=np.int64, count=self.max_order + 1)

    def largest_free_order(self) -> int:
        """Order of the largest free block, -1 when nothing is free."""
        for o in range(self.max_order, -1, -1):
            if self.free[o]:
                return o
        return -1

    def unusable_index(self, order: int) -> float:
        """Fraction of free pages that cannot serve an allocation of ``order`` (the kernel's
        unusable free space index): 0 = no fragmentation, 1 = all free memory in smaller blocks."""
        if self.free_pages == 0:
            return 1.0
        counts = self.free_counts()
        usable = int((counts[order:] << np.arange(order, self.max_order + 1)).sum())
        return 1.0 - usable / self.free_pages
