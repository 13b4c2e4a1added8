//! virtnet benchmarks (being written).
