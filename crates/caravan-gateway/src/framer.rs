//! Nomad's StreamFramer as `/v1/agent/monitor` uses it: log bytes are gathered for
//! [`BATCH_WINDOW`] and sent as frames of at most [`FRAME_SIZE`] bytes with `FileEvent` `log`;
//! an empty frame (`{}` on the wire) goes out every [`HEARTBEAT`] whatever else happens.
//!
//! Nothing here buffers without bound: the framer reads its source only when its reader asks
//! for the next frame, so a slow HTTP reader stops the source (whose own queue then drops).

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use caravan_proto::v1::StreamFrame;
use futures::{Stream, StreamExt};
use tokio::time::{Instant, Interval, MissedTickBehavior};

pub const HEARTBEAT: Duration = Duration::from_secs(1);
pub const BATCH_WINDOW: Duration = Duration::from_millis(200);
pub const FRAME_SIZE: usize = 1024;

/// The `FileEvent` of every data frame of a monitor.
pub const LOG_EVENT: &str = "log";

struct Framer<S> {
    source: S,
    buf: BytesMut,
    /// Bytes already framed in the current batch: Nomad's frames after a full one carry it.
    offset: i64,
    ready: VecDeque<StreamFrame>,
    flush: Interval,
    heartbeat: Interval,
    ended: bool,
}

fn ticker(period: Duration) -> Interval {
    let mut t = tokio::time::interval_at(Instant::now() + period, period);
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

impl<S> Framer<S> {
    fn push(&mut self, data: Bytes) {
        self.ready.push_back(StreamFrame {
            offset: self.offset,
            data,
            file: String::new(),
            file_event: LOG_EVENT.to_owned(),
        });
    }

    fn flush(&mut self) {
        if !self.buf.is_empty() {
            let data = self.buf.split().freeze();
            self.push(data);
        }
        self.offset = 0;
    }
}

/// The frames of `source`, ending after the last of its bytes once it ends.
pub fn log_frames<S>(source: S) -> impl Stream<Item = StreamFrame> + Send + 'static
where
    S: Stream<Item = Bytes> + Send + Unpin + 'static,
{
    let framer = Framer {
        source,
        buf: BytesMut::new(),
        offset: 0,
        ready: VecDeque::new(),
        flush: ticker(BATCH_WINDOW),
        heartbeat: ticker(HEARTBEAT),
        ended: false,
    };
    futures::stream::unfold(framer, |mut f| async move {
        loop {
            if let Some(frame) = f.ready.pop_front() {
                return Some((frame, f));
            }
            if f.ended {
                return None;
            }
            tokio::select! {
                item = f.source.next() => match item {
                    Some(bytes) => {
                        f.buf.extend_from_slice(&bytes);
                        while f.buf.len() >= FRAME_SIZE {
                            let data = f.buf.split_to(FRAME_SIZE).freeze();
                            f.push(data);
                            f.offset += FRAME_SIZE as i64;
                        }
                    }
                    None => {
                        f.flush();
                        f.ended = true;
                    }
                },
                _ = f.flush.tick() => f.flush(),
                _ = f.heartbeat.tick() => f.ready.push_back(StreamFrame::default()),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::ReceiverStream;

    fn framed(rx: mpsc::Receiver<Bytes>) -> impl Stream<Item = StreamFrame> {
        Box::pin(log_frames(ReceiverStream::new(rx)))
    }

    #[tokio::test(start_paused = true)]
    async fn lines_are_batched_then_heartbeats_follow() {
        let (tx, rx) = mpsc::channel(8);
        let mut frames = framed(rx);
        tx.send(Bytes::from_static(b"one\n")).await.unwrap();
        tx.send(Bytes::from_static(b"two\n")).await.unwrap();
        let f = frames.next().await.unwrap();
        assert_eq!(&f.data[..], b"one\ntwo\n");
        assert_eq!(f.file_event, LOG_EVENT);
        assert_eq!(f.offset, 0);
        let start = Instant::now();
        let hb = frames.next().await.unwrap();
        assert_eq!(hb, StreamFrame::default());
        assert!(start.elapsed() <= HEARTBEAT);
    }

    #[tokio::test(start_paused = true)]
    async fn big_batches_are_cut_at_the_frame_size() {
        let (tx, rx) = mpsc::channel(8);
        let mut frames = framed(rx);
        tx.send(Bytes::from(vec![b'x'; FRAME_SIZE * 2 + 10]))
            .await
            .unwrap();
        drop(tx);
        let sizes: Vec<(usize, i64)> = frames
            .by_ref()
            .map(|f| (f.data.len(), f.offset))
            .collect()
            .await;
        assert_eq!(
            sizes,
            [(FRAME_SIZE, 0), (FRAME_SIZE, 1024), (10, 2048)],
            "the tail goes out when the source ends"
        );
    }
}
