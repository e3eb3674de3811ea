//! The task environment: NOMAD_* variables and `${...}` interpolation (being written).
