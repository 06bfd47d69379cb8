//! (being built)
pub mod cli;
