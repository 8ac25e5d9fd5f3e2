//! A flow with tolerant edges under crashes, restarts and holds.
