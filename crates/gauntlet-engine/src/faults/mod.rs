//! Faults gauntlet applies to the systems under test, one module each. Every fault is
//! registered in the cleanup journal with its undo *before* it takes effect.
//! (Proxy faults live in `gauntlet-net`; process and resource faults arrive with the chaos step.)

pub mod corrupt_file;
