//! The state a device handle shares with its thread: a bounded frame queue, the
//! close flag that stops the thread, and the error that stopped it, if any.
//!
//! One mutex guards all of it so "closed" and "queue changed" are signalled through the
//! same condition variable: a thread waiting for a frame wakes for either.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::error::DeviceError;

/// What [`Shared::pop_timeout`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pop {
    Frame(Vec<i16>),
    /// Nothing arrived within the timeout.
    Empty,
    /// The handle was dropped: the thread should stop.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Vec<i16>>,
    dropped: u64,
    closed: bool,
    failure: Option<DeviceError>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    capacity: usize,
}

impl Shared {
    pub(crate) fn new(capacity: usize) -> Self {
        Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    /// A panic while holding the lock cannot leave the queue inconsistent (every update
    /// is a single push/pop/assignment), so a poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `frame`, dropping the oldest one if the queue is full.
    pub(crate) fn push(&self, frame: Vec<i16>) {
        let mut st = self.lock();
        if st.frames.len() >= self.capacity {
            st.frames.pop_front();
            st.dropped += 1;
        }
        st.frames.push_back(frame);
        drop(st);
        self.changed.notify_all();
    }

    /// The oldest queued frame, without waiting.
    pub(crate) fn pop(&self) -> Option<Vec<i16>> {
        self.lock().frames.pop_front()
    }

    /// The oldest queued frame, waiting up to `timeout` for one. Queued frames are
    /// still returned after close; `Closed` comes once the queue is empty.
    pub(crate) fn pop_timeout(&self, timeout: Duration) -> Pop {
        let st = self.lock();
        let (mut st, _) = self
            .changed
            .wait_timeout_while(st, timeout, |s| s.frames.is_empty() && !s.closed)
            .unwrap_or_else(PoisonError::into_inner);
        match st.frames.pop_front() {
            Some(f) => Pop::Frame(f),
            None if st.closed => Pop::Closed,
            None => Pop::Empty,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().frames.len()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Tells the thread to stop and wakes it if it is waiting for a frame.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Records why the thread stopped; the first failure wins.
    pub(crate) fn fail(&self, err: DeviceError) {
        let mut st = self.lock();
        if st.failure.is_none() {
            st.failure = Some(err);
        }
        drop(st);
        self.changed.notify_all();
    }

    pub(crate) fn failure(&self) -> Option<DeviceError> {
        self.lock().failure.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_drop_oldest_when_full() {
        let q = Shared::new(3);
        for i in 0..5i16 {
            q.push(vec![i; 2]);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.dropped(), 2);
        assert_eq!(q.pop(), Some(vec![2, 2]));
        assert_eq!(q.pop(), Some(vec![3, 3]));
        assert_eq!(q.pop(), Some(vec![4, 4]));
        assert_eq!(q.pop(), None);
        assert_eq!(q.dropped(), 2);
    }

    #[test]
    fn zero_capacity_still_holds_one() {
        let q = Shared::new(0);
        q.push(vec![1]);
        q.push(vec![2]);
        assert_eq!(q.pop(), Some(vec![2]));
        assert_eq!(q.dropped(), 1);
    }

    #[test]
    fn pop_timeout_states() {
        let q = Shared::new(2);
        assert_eq!(q.pop_timeout(Duration::ZERO), Pop::Empty);
        q.push(vec![7]);
        assert_eq!(q.pop_timeout(Duration::ZERO), Pop::Frame(vec![7]));
        q.push(vec![8]);
        q.close();
        assert!(q.is_closed());
        // Frames queued before close are still delivered, then Closed.
        assert_eq!(q.pop_timeout(Duration::from_secs(60)), Pop::Frame(vec![8]));
        assert_eq!(q.pop_timeout(Duration::from_secs(60)), Pop::Closed);
    }

    #[test]
    fn close_wakes_a_waiting_thread() {
        let q = std::sync::Arc::new(Shared::new(2));
        let q2 = q.clone();
        let waiter = std::thread::spawn(move || q2.pop_timeout(Duration::from_secs(60)));
        q.close();
        assert_eq!(waiter.join().unwrap(), Pop::Closed);
    }

    #[test]
    fn push_wakes_a_waiting_thread() {
        let q = std::sync::Arc::new(Shared::new(2));
        let q2 = q.clone();
        let waiter = std::thread::spawn(move || q2.pop_timeout(Duration::from_secs(60)));
        q.push(vec![5, 6]);
        assert_eq!(waiter.join().unwrap(), Pop::Frame(vec![5, 6]));
    }

    #[test]
    fn first_failure_wins() {
        let q = Shared::new(1);
        assert_eq!(q.failure(), None);
        q.fail(DeviceError::Io("first".into()));
        q.fail(DeviceError::Io("second".into()));
        assert_eq!(q.failure(), Some(DeviceError::Io("first".into())));
    }
}
