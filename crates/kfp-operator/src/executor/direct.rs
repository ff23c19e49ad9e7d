//! The direct executor: in-process provider calls.
