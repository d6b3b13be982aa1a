//! The in-memory "socket" under OpenSSL: one inbound datagram at a time in, whole datagrams out.
//!
//! OpenSSL's DTLS code reads one datagram per read call and writes one datagram per write
//! call (it buffers a flight and flushes it in MTU-sized pieces), so datagram boundaries are
//! preserved in both directions.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

/// Most datagrams kept for the caller to send before new ones are dropped. Flights are a few
/// datagrams; this only bites if the caller stops polling, and then UDP-like loss is the
/// right behaviour.
const MAX_QUEUED_DATAGRAMS: usize = 256;

#[derive(Debug, Default)]
pub(crate) struct DatagramPipe {
    /// The datagram OpenSSL reads next.
    inbound: Option<Vec<u8>>,
    /// Set when a read found nothing to read during the current engine call.
    drained: bool,
    /// While true, writes made before the inbound datagram was read, or after a read found
    /// nothing, are discarded: they are OpenSSL's own clock-driven retransmissions (see
    /// `timer.rs`), which we schedule ourselves instead. Only what OpenSSL writes in response
    /// to the datagram gets out.
    mute_unprompted: bool,
    outbound: VecDeque<Vec<u8>>,
    /// Datagrams accepted for sending since the association started.
    pub(crate) written: u64,
}

impl DatagramPipe {
    /// Starts an engine call, optionally handing it one datagram to read.
    pub(crate) fn begin(&mut self, inbound: Option<Vec<u8>>, mute_unprompted: bool) {
        self.inbound = inbound;
        self.drained = false;
        self.mute_unprompted = mute_unprompted;
    }

    pub(crate) fn pop_outbound(&mut self) -> Option<Vec<u8>> {
        self.outbound.pop_front()
    }
}

impl Read for DatagramPipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inbound.take() {
            Some(datagram) => {
                // A datagram longer than OpenSSL's buffer is truncated, as a socket would.
                let n = datagram.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), datagram.get(..n)) {
                    dst.copy_from_slice(src);
                }
                Ok(n)
            }
            None => {
                self.drained = true;
                Err(io::ErrorKind::WouldBlock.into())
            }
        }
    }
}

impl Write for DatagramPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.mute_unprompted && (self.inbound.is_some() || self.drained) {
            return Ok(buf.len());
        }
        if self.outbound.len() < MAX_QUEUED_DATAGRAMS {
            self.outbound.push_back(buf.to_vec());
            self.written += 1;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
