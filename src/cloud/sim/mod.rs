//! Simulated cloud (in progress).
