//! placeholder for dependency resolution
