"""Cell pools: collections of RGBA sprites, one class and scale each, with provenance."""

from .store import MemoryPool, Pool, PoolStore, SpriteRecord, open_pool, write_pool

__all__ = ["MemoryPool", "Pool", "PoolStore", "SpriteRecord", "open_pool", "write_pool"]
