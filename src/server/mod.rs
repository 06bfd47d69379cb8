//! The reference backend (being built).
pub mod cli;
