//! Static analysis of a scenario (in progress).
