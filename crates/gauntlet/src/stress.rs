//! `gauntlet stress`: a drill's resource pressure in its own process, so the cleanup journal
//! can stop it and `gauntlet recover` stops a dead run's: busy threads, touched memory, and
//! disk I/O (blocks written and fsynced, then read back from the disk, at a rate or as fast
//! as the file system takes them). It says the pressure is in force (`--ready FILE`) only
//! once it is: the memory touched, the threads running, the first block on the disk; the
//! I/O load reports what it achieved (`--report FILE`, JSON) as it goes. Stopped early (the
//! drill's undo, a dead run's recover), it leaves its working file to the journal's entry.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gauntlet_report::exit;

use crate::CliError;

/// One I/O block.
const BLOCK: usize = 256 << 10;
/// How often the I/O load writes its report.
const REPORT_EVERY: Duration = Duration::from_millis(200);

/// What to stress, as `gauntlet stress` was asked.
pub struct Pressure {
    pub cpu: u32,
    pub memory: u64,
    pub io: Option<Io>,
    pub seconds: f64,
    pub ready: Option<PathBuf>,
}

/// The disk I/O load: its working file, how big it may grow, the rate (none: saturation),
/// and where its achieved rates go.
pub struct Io {
    pub file: PathBuf,
    pub size: u64,
    pub rate: Option<u64>,
    pub report: Option<PathBuf>,
}

pub fn run(pressure: Pressure) -> Result<i32, CliError> {
    let until = Instant::now() + Duration::from_secs_f64(pressure.seconds.clamp(0.0, 3600.0));
    let held = touch(pressure.memory)?;
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..pressure.cpu)
        .map(|_| std::thread::spawn(move || spin(until)))
        .collect();
    let mut said = format!(
        "{} bytes touched, {} busy threads",
        held.len(),
        threads.len()
    );
    let io = match &pressure.io {
        Some(io) => {
            let mut load = IoLoad::open(io)?;
            load.step(&mut rng(io.file.as_os_str().len() as u64))
                .map_err(|e| io_error(&io.file, e))?;
            said.push_str(&format!(
                ", disk I/O on {} (first block fsynced)",
                io.file.display()
            ));
            let stop = stop.clone();
            Some(std::thread::spawn(move || load.run(until, &stop)))
        }
        None => None,
    };
    if let Some(path) = &pressure.ready {
        gauntlet_report::write_atomic(path, format!("{said}\n").as_bytes())
            .map_err(|e| CliError::Internal(anyhow::anyhow!("{}: {e}", path.display())))?;
    }
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(
            Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())),
        );
    }
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    if let Some(io) = io {
        let _ = io.join();
    }
    if let Some(io) = &pressure.io {
        let _ = std::fs::remove_file(&io.file);
    }
    std::hint::black_box(&held);
    Ok(exit::GO)
}

/// `memory` bytes allocated and every page touched, so they are resident.
fn touch(memory: u64) -> Result<Vec<u8>, CliError> {
    let mut held: Vec<u8> = Vec::new();
    if memory > 0 {
        let size = usize::try_from(memory)
            .map_err(|_| CliError::Usage(format!("{memory} bytes do not fit in memory")))?;
        held.try_reserve_exact(size)
            .map_err(|e| CliError::Usage(format!("cannot allocate {memory} bytes: {e}")))?;
        // A page at a time by copy: this binary is built unoptimised (#22), where filling
        // 256 MiB byte by byte (`resize`) took 0.98 s and page copies take 0.15 s.
        let page = [1u8; 4096];
        while held.len() < size {
            let n = (size - held.len()).min(page.len());
            held.extend_from_slice(&page[..n]);
        }
    }
    Ok(held)
}

fn spin(until: Instant) {
    let mut x: u64 = 1;
    while Instant::now() < until {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

fn io_error(path: &Path, e: std::io::Error) -> CliError {
    CliError::Usage(format!("disk I/O on {}: {e}", path.display()))
}

fn rng(seed: u64) -> gauntlet_net::SplitMix64 {
    gauntlet_net::SplitMix64::new(seed)
}

/// The I/O load in progress.
struct IoLoad {
    file: File,
    path: PathBuf,
    slots: u64,
    next: u64,
    rate: Option<u64>,
    report: Option<PathBuf>,
    block: Vec<u8>,
    started: Instant,
    written: u64,
    read: u64,
    fsyncs: u64,
}

impl IoLoad {
    fn open(io: &Io) -> Result<Self, CliError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&io.file)
            .map_err(|e| io_error(&io.file, e))?;
        Ok(Self {
            file,
            path: io.file.clone(),
            slots: (io.size / BLOCK as u64).max(1),
            next: 0,
            rate: io.rate.filter(|r| *r > 0),
            report: io.report.clone(),
            block: vec![0; BLOCK],
            started: Instant::now(),
            written: 0,
            read: 0,
            fsyncs: 0,
        })
    }

    /// One block: fresh bytes (nothing a file system could compress or deduplicate) written
    /// at the next slot and fsynced, the page cache told to drop it, and the block before it
    /// read back from the disk.
    fn step(&mut self, rng: &mut gauntlet_net::SplitMix64) -> std::io::Result<()> {
        rng.fill(&mut self.block);
        let at = (self.next % self.slots) * BLOCK as u64;
        self.file.seek(SeekFrom::Start(at))?;
        self.file.write_all(&self.block)?;
        self.file.sync_data()?;
        self.written += BLOCK as u64;
        self.fsyncs += 1;
        let _ = nix::fcntl::posix_fadvise(
            &self.file,
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
        if self.next > 0 {
            let back = ((self.next - 1) % self.slots) * BLOCK as u64;
            let n = self.file.read_at(&mut self.block, back)?;
            self.read += n as u64;
        }
        self.next += 1;
        Ok(())
    }

    /// Blocks until `until` or `stop`, at the rate (a block when the bytes so far allow one)
    /// or as fast as the disk takes them; the report every 200 ms and at the end.
    fn run(mut self, until: Instant, stop: &AtomicBool) {
        let mut rng = rng(self.path.as_os_str().len() as u64 ^ 0x10AD);
        let mut reported = Instant::now();
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            if let Some(rate) = self.rate {
                let due = Duration::from_secs_f64(self.written as f64 / rate as f64);
                let ahead = due.saturating_sub(self.started.elapsed());
                if !ahead.is_zero() {
                    std::thread::sleep(ahead.min(Duration::from_millis(50)));
                    continue;
                }
            }
            if self.step(&mut rng).is_err() {
                break;
            }
            if reported.elapsed() >= REPORT_EVERY {
                self.report();
                reported = Instant::now();
            }
        }
        self.report();
    }

    fn report(&self) {
        let Some(path) = &self.report else { return };
        let seconds = self.started.elapsed().as_secs_f64();
        let line = serde_json::json!({
            "written_bytes": self.written,
            "read_bytes": self.read,
            "fsyncs": self.fsyncs,
            "seconds": seconds,
        });
        let _ = gauntlet_report::write_atomic(path, line.to_string().as_bytes());
    }
}
