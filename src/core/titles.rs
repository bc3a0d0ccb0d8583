//! Cluster titles.
