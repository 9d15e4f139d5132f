//! A byte pump: one direction of a connection, acting on the faults that apply to it.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::TcpStream;

use super::connection::Activity;
use super::framing::{Event, RequestFramer};
use super::state::{Shared, View};
use super::{ActiveFault, Direction, FaultKind};
use crate::rng::SplitMix64;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum End {
    /// The source closed; the close was passed on.
    Closed,
    /// An error or a fault: end the whole connection.
    Abort,
    /// A data limit was reached: close the whole connection normally.
    Cut,
}

pub(super) struct Pump<'a> {
    pub(super) shared: &'a Shared,
    pub(super) view: View<'a>,
    pub(super) direction: Direction,
    pub(super) from: &'a TcpStream,
    pub(super) to: &'a TcpStream,
    pub(super) framer: RequestFramer,
    pub(super) rng: SplitMix64,
    pub(super) activity: &'a Activity,
    /// How many of the stream's first bytes a drop-bytes fault has taken.
    pub(super) dropped: u64,
    /// The request being answered by the proxy itself (its status), if any.
    pub(super) aborting: Option<u16>,
    /// The limit-data fault acting on this stream and how many bytes it has let through.
    pub(super) limited: Option<(u64, u64)>,
}

const CHUNK: usize = 16 * 1024;

impl Pump<'_> {
    pub(super) async fn run(mut self) -> End {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            if self.from.readable().await.is_err() || !self.wait_out_partition().await {
                return End::Abort;
            }
            if buf.is_empty() {
                buf.resize(CHUNK, 0);
            }
            let n = match read_some(self.from, &mut buf) {
                Ok(0) => return self.close().await,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return End::Abort,
            };
            self.counted(n);
            if self.view.is_clear() && self.framer.is_opaque() {
                if write_all(self.to, &buf[..n]).await.is_err() {
                    return End::Abort;
                }
            } else if let Some(end) = self.through_faults(&buf[..n]).await {
                return end;
            }
        }
    }

    fn counted(&self, n: usize) {
        let counter = match self.direction {
            Direction::Upstream => &self.shared.counters.bytes_upstream,
            _ => &self.shared.counters.bytes_downstream,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        self.activity.touch();
    }

    /// Paused by a partition: the bytes wait in the kernel, as they would on a wire. False:
    /// the proxy is gone.
    async fn wait_out_partition(&mut self) -> bool {
        let mut held_by = None;
        loop {
            let list = self.view.current();
            let Some(partition) = self.view.paused(&list) else {
                return true;
            };
            if held_by != Some(partition) {
                self.shared.act(partition);
                held_by = Some(partition);
            }
            if self.view.changed().await.is_err() {
                return false;
            }
        }
    }

    /// Passes `data` on through the active faults, in the order they act on a stream: a
    /// reset, bytes dropped from its start, latency, HTTP faults, a data limit, slicing,
    /// then the bandwidth cap. `Some`: the connection ends so.
    async fn through_faults(&mut self, data: &[u8]) -> Option<End> {
        let list = self.view.current();
        // A reset that came in while these bytes were on their way: they go no further,
        // whether or not the watchdog has run yet.
        if let Some(f) = self.view.find(&list, FaultKind::resets_at_once, None, 0) {
            self.shared.act(f.id);
            self.shared.counters.resets.fetch_add(1, Ordering::Relaxed);
            return Some(End::Abort);
        }
        if self.reset_later(&list).await {
            return Some(End::Abort);
        }
        let data = self.drop_bytes(&list, data);
        if let Some(f) = self.one_way(&list, |k| matches!(k, FaultKind::Latency { .. }))
            && let FaultKind::Latency { latency, jitter } = f.fault.kind
        {
            let (id, delay) = (f.id, self.jittered(latency, jitter));
            self.shared.act(id);
            self.view.hold(id, delay).await;
        }
        let end = if self.framer.is_opaque() && self.aborting.is_none() {
            self.send(data, &list).await
        } else {
            self.framed(data, &list).await
        };
        if let Some(f) = self.one_way(&list, |k| matches!(k, FaultKind::Bandwidth { .. }))
            && let FaultKind::Bandwidth { bytes_per_second } = f.fault.kind
            && end.is_none()
        {
            let seconds = data.len() as f64 / bytes_per_second as f64;
            let id = f.id;
            self.shared.act(id);
            self.view.hold(id, Duration::from_secs_f64(seconds)).await;
        }
        end
    }

    /// A reset due `after` the first bytes in this direction: the bytes wait that long and
    /// go no further. True: reset the connection now (false: the fault came out meanwhile,
    /// or none applies).
    async fn reset_later(&mut self, list: &[ActiveFault]) -> bool {
        let Some(f) = self.one_way(
            list,
            |k| matches!(k, FaultKind::Reset { after } if !after.is_zero()),
        ) else {
            return false;
        };
        let (id, FaultKind::Reset { after }) = (f.id, &f.fault.kind) else {
            return false;
        };
        self.shared.act(id);
        self.view.hold(id, *after).await;
        let still_in = self.view.current().iter().any(|f| f.id == id);
        if still_in {
            self.shared.counters.resets.fetch_add(1, Ordering::Relaxed);
        }
        still_in
    }

    /// Writes `data` on, through a data limit and a slicer if one acts in this direction.
    /// `Some`: the connection ends so.
    async fn send(&mut self, data: &[u8], list: &[ActiveFault]) -> Option<End> {
        let (data, cut) = self.limit(list, data);
        let slicer = self
            .one_way(list, |k| matches!(k, FaultKind::Slicer { .. }))
            .map(|f| (f.id, f.fault.kind.clone()));
        let written = match slicer {
            Some((
                id,
                FaultKind::Slicer {
                    average_size,
                    size_variation,
                    delay,
                },
            )) => {
                self.shared.act(id);
                self.sliced(data, id, average_size, size_variation, delay)
                    .await
            }
            _ => write_all(self.to, data).await,
        };
        match (written, cut) {
            (Err(_), _) => Some(End::Abort),
            (Ok(()), true) => Some(End::Cut),
            (Ok(()), false) => None,
        }
    }

    /// What of `data` a limit-data fault still lets through, and whether the limit is then
    /// reached. The count starts when the fault first sees this stream.
    fn limit<'d>(&mut self, list: &[ActiveFault], data: &'d [u8]) -> (&'d [u8], bool) {
        let Some(f) = self.one_way(list, |k| matches!(k, FaultKind::LimitData { .. })) else {
            return (data, false);
        };
        let FaultKind::LimitData { bytes } = f.fault.kind else {
            return (data, false);
        };
        let passed = match self.limited {
            Some((id, passed)) if id == f.id => passed,
            _ => 0,
        };
        self.shared.act(f.id);
        let allowed = bytes.saturating_sub(passed).min(data.len() as u64);
        self.limited = Some((f.id, passed + allowed));
        let reached = passed + allowed >= bytes;
        (&data[..allowed as usize], reached)
    }

    /// Writes `data` in slices of `average` ± `variation` bytes, `delay` apart (the slice
    /// sizes drawn from the connection's seeded generator).
    async fn sliced(
        &mut self,
        mut data: &[u8],
        id: u64,
        average: u64,
        variation: u64,
        delay: Duration,
    ) -> std::io::Result<()> {
        while !data.is_empty() {
            let spread = variation.min(average.saturating_sub(1));
            let offset = (self.rng.next_f64() * (2 * spread + 1) as f64) as u64;
            let size = (average + offset).saturating_sub(spread).max(1);
            let (slice, rest) = data.split_at((size as usize).min(data.len()));
            write_all(self.to, slice).await?;
            data = rest;
            if !data.is_empty() && !delay.is_zero() {
                self.view.hold(id, delay).await;
            }
        }
        Ok(())
    }

    /// The first fault of a kind `want` accepts that acts in this pump's direction.
    fn one_way<'f>(
        &self,
        list: &'f [ActiveFault],
        want: impl Fn(&FaultKind) -> bool,
    ) -> Option<&'f ActiveFault> {
        self.view.find(list, want, Some(self.direction), 0)
    }

    /// What is left of `data` once a drop-bytes fault has taken its share of the stream's
    /// first bytes.
    fn drop_bytes<'d>(&mut self, list: &[ActiveFault], data: &'d [u8]) -> &'d [u8] {
        let Some(f) = self.one_way(list, |k| matches!(k, FaultKind::DropBytes { .. })) else {
            return data;
        };
        let FaultKind::DropBytes { bytes } = f.fault.kind else {
            return data;
        };
        if self.dropped >= bytes {
            return data;
        }
        let skip = (bytes - self.dropped).min(data.len() as u64);
        self.shared.act(f.id);
        self.dropped += skip;
        &data[skip as usize..]
    }

    /// Passes `data` on request by request, acting on HTTP faults. `Some`: the connection
    /// ends so.
    async fn framed(&mut self, mut data: &[u8], list: &[ActiveFault]) -> Option<End> {
        while !data.is_empty() || self.framer.has_pending_end() {
            let (used, event) = self.framer.step(data);
            let (piece, rest) = data.split_at(used);
            data = rest;
            match event {
                Event::RequestStart => {
                    self.shared
                        .counters
                        .requests
                        .fetch_add(1, Ordering::Relaxed);
                    let request = self.framer.requests + 1;
                    let find = |want: fn(&FaultKind) -> bool| {
                        list.iter()
                            .find(|f| {
                                want(&f.fault.kind) && self.shared.hits(f, self.view.conn, request)
                            })
                            .map(|f| (f.id, f.fault.kind.clone()))
                    };
                    if let Some((id, FaultKind::HttpAbort { status })) =
                        find(|k| matches!(k, FaultKind::HttpAbort { .. }))
                    {
                        self.shared.act(id);
                        self.aborting = Some(status);
                    } else if let Some((id, FaultKind::HttpDelay { delay })) =
                        find(|k| matches!(k, FaultKind::HttpDelay { .. }))
                    {
                        self.shared.act(id);
                        self.view.hold(id, delay).await;
                    }
                }
                Event::Bytes if self.aborting.is_none() => {
                    if let Some(end) = self.send(piece, list).await {
                        return Some(end);
                    }
                }
                Event::Bytes => {}
                Event::RequestEnd => {
                    if let Some(status) = self.aborting.take() {
                        self.shared
                            .counters
                            .aborted_requests
                            .fetch_add(1, Ordering::Relaxed);
                        if write_all(self.from, &synthetic_response(status, false))
                            .await
                            .is_err()
                        {
                            return Some(End::Abort);
                        }
                    }
                }
                Event::Opaque => {
                    // An aborted request whose end cannot be found: answer it and close.
                    if let Some(status) = self.aborting.take() {
                        let _ = write_all(self.from, &synthetic_response(status, true)).await;
                        return Some(End::Abort);
                    }
                }
            }
        }
        None
    }

    fn jittered(&mut self, latency: Duration, jitter: Duration) -> Duration {
        if jitter.is_zero() {
            return latency;
        }
        let offset = (self.rng.next_f64() * 2.0 - 1.0) * jitter.as_secs_f64();
        Duration::from_secs_f64((latency.as_secs_f64() + offset).max(0.0))
    }

    /// The source closed its side: pass the close on (after a slow-close delay).
    async fn close(&mut self) -> End {
        let list = self.view.current();
        if let Some(f) = self.view.find(
            &list,
            |k| matches!(k, FaultKind::SlowClose { .. }),
            Some(self.direction),
            0,
        ) && let FaultKind::SlowClose { delay } = f.fault.kind
        {
            let id = f.id;
            self.shared.act(id);
            self.view.hold(id, delay).await;
        }
        let _ = socket2::SockRef::from(self.to).shutdown(std::net::Shutdown::Write);
        // The other direction's linger counts from this close.
        self.activity.touch();
        End::Closed
    }
}

fn synthetic_response(status: u16, close: bool) -> Vec<u8> {
    let reason = hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Injected");
    let body = format!("{status} {reason} (injected by the gauntlet fault proxy)\n");
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nx-gauntlet-fault: http_abort\r\n",
        body.len()
    );
    if status == 429 || status == 503 {
        head.push_str("retry-after: 1\r\n");
    }
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    head.push_str(&body);
    head.into_bytes()
}

/// Reads what the socket holds. A read that fills less than `buf` took all there was, so
/// the socket's readiness is cleared at once (as tokio's own `poll_read` does) rather than
/// by one more read that would find nothing: on a keep-alive connection that read was half
/// of the proxy's system calls. Data that arrives meanwhile raises readiness again.
fn read_some(stream: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut drained = None;
    let read = stream.try_io(Interest::READABLE, || {
        let n = (&*socket2::SockRef::from(stream)).read(buf)?;
        if n > 0 && n < buf.len() {
            drained = Some(n);
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match (read, drained) {
        (_, Some(n)) => Ok(n),
        (read, None) => read,
    }
}

async fn write_all(stream: &TcpStream, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => stream.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
