//! The Caravan HTTP edge: the Nomad API routes, shared query conventions, rendering.
