//! Faults gauntlet applies to the systems under test, one module each. Every fault is
//! registered in the cleanup journal with its undo *before* it takes effect.
//! The proxy itself lives in `gauntlet-net`; `inject` turns a drill's faults into proxy
//! faults, signals, stressor processes, fills and corruptions, and takes them out again.

pub mod corrupt_file;
pub mod inject;
