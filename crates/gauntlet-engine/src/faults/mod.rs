//! Faults gauntlet applies to the systems under test, one module each. Every fault is
//! registered in the cleanup journal with its undo *before* it takes effect.
//! The proxy itself lives in `gauntlet-net`; `inject` turns a drill's faults into proxy
//! faults, signals, stressor processes, fills, corruptions, actions and
//! skewed clocks (`clock`), and takes them out again.

pub mod clock;
pub mod corrupt_file;
pub mod inject;
