//! The docs test's parts: markdown parsing, output matching, running blocks.
#![allow(dead_code)]

pub mod exec;
pub mod help;
pub mod markdown;
pub mod matching;
