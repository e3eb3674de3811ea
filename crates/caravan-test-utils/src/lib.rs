//! Test fixtures: throwaway PostgreSQL databases, free ports, running Caravan processes.
