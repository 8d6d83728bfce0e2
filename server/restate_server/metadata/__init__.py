"""The metadata store: versioned key-value with compare-and-set, behind one API, many providers."""
