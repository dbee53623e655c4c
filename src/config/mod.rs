//! Configuration: KDL files -> the validated model in [`model`].
//!
//! Placeholder: the parser is being written (config/kdl.rs).

pub mod model;

pub use model::*;
