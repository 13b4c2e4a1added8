//! Go quoting (being written).
