//! Simulation runner (in progress).
