"""Leadership of partitions: which partitions this node leads, and the side effects of those it does."""
