//! NAT behaviour discovery (RFC 5780) with the classic RFC 3489 verdict, sans-IO.
//!
//! The probe needs a server with two IP addresses and two ports that
//! announces OTHER-ADDRESS and honours CHANGE-REQUEST. It runs these Binding
//! tests, one at a time, each a [`ClientTransaction`]:
//!
//! ```text
//!  T1  to primary (P)                         -> mapped M1, OTHER-ADDRESS A
//!      no answer: UdpBlocked. No OTHER-ADDRESS: Unknown (server lacks RFC 5780).
//!  F2  to P, CHANGE-REQUEST ip+port           answer from A        -> filtering EIF
//!  F3  to P, CHANGE-REQUEST port              answer from P.ip:A.port -> ADF, none: APDF
//!      M1 == local address: no NAT -> OpenInternet (EIF) / SymmetricUdpFirewall
//!  M2  to A.ip:P.port                         -> M2 == M1: mapping EIM
//!  M3  to A.ip:A.port                         -> M3 == M2: ADM, else APDM
//! ```
//!
//! Classic types: EIM + EIF = FullCone, EIM + ADF = RestrictedCone,
//! EIM + APDF = PortRestrictedCone, any other mapping = Symmetric.
//!
//! Responses to change tests that arrive from the wrong source (a server
//! ignoring CHANGE-REQUEST) are not accepted, so they cannot fake an open
//! filter; they are counted in [`NatProbe::ignored`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::attribute::ChangeRequest;
use crate::client::Transmit;
use crate::message::{Message, TransactionId};
use crate::method::{Class, Method};
use crate::transaction::{ClientTransaction, TransactionState};
use crate::writer::MessageWriter;

/// The RFC 3489 NAT types, plus `Unknown` when the server cannot run the tests.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum NatType {
    /// No NAT and no filtering: the mapped address is the local one.
    OpenInternet,
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering.
    RestrictedCone,
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestrictedCone,
    /// Mapping depends on the destination.
    Symmetric,
    /// No NAT, but a firewall filters unsolicited inbound traffic.
    SymmetricUdpFirewall,
    /// The first Binding request got no answer.
    UdpBlocked,
    /// The server lacks RFC 5780 support (no OTHER-ADDRESS, or an error
    /// answer), or a mapping test got no answer.
    Unknown,
}

/// RFC 5780 section 4.3 mapping behaviour.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum MappingBehavior {
    /// Same mapping for every destination.
    EndpointIndependent,
    /// Mapping depends on the destination IP.
    AddressDependent,
    /// Mapping depends on destination IP and port.
    AddressAndPortDependent,
}

/// RFC 5780 section 4.4 filtering behaviour.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum FilteringBehavior {
    /// Anyone may send to the mapping.
    EndpointIndependent,
    /// Only IPs the client sent to.
    AddressDependent,
    /// Only IP:port pairs the client sent to.
    AddressAndPortDependent,
}

/// What the probe found.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct NatProbeResult {
    /// The classic verdict.
    pub nat_type: NatType,
    /// The mapped (server-reflexive) address from the first test.
    pub mapped: Option<SocketAddr>,
    /// Mapping behaviour, when measured.
    pub mapping: Option<MappingBehavior>,
    /// Filtering behaviour, when measured.
    pub filtering: Option<FilteringBehavior>,
    /// The server's OTHER-ADDRESS.
    pub other_address: Option<SocketAddr>,
    /// RESPONSE-ORIGIN of the first answer.
    pub response_origin: Option<SocketAddr>,
}

/// Timing of each test's transaction.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct NatProbeConfig {
    /// Initial RTO.
    pub rto: Duration,
    /// Sends per test (Rc).
    pub rc: u32,
    /// Final wait in RTOs (Rm).
    pub rm: u32,
}

impl Default for NatProbeConfig {
    /// The RFC 8489 transaction defaults; a test without an answer then takes
    /// 39.5 s, which is what RFC 5780 implies. Callers wanting a quicker
    /// verdict lower `rc`/`rm`.
    fn default() -> Self {
        Self {
            rto: crate::transaction::DEFAULT_RTO,
            rc: crate::transaction::DEFAULT_RC,
            rm: crate::transaction::DEFAULT_RM,
        }
    }
}

#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Step {
    Test1,
    FilterBoth,
    FilterPort,
    Map2,
    Map3,
}

/// The discovery state machine. Drive it with `poll_transmit` /
/// `handle_response` / `poll_timeout` / `handle_timeout` until
/// [`NatProbe::result`] is `Some`.
#[derive(Debug)]
pub struct NatProbe {
    config: NatProbeConfig,
    local: SocketAddr,
    server: SocketAddr,
    tid_base: TransactionId,
    step: Option<Step>,
    destination: SocketAddr,
    expected_source: Option<SocketAddr>,
    txn: Option<ClientTransaction>,
    mapped1: Option<SocketAddr>,
    mapped2: Option<SocketAddr>,
    other: Option<SocketAddr>,
    origin: Option<SocketAddr>,
    filtering: Option<FilteringBehavior>,
    result: Option<NatProbeResult>,
    ignored: u32,
}

impl NatProbe {
    /// Starts probing `server` from the socket bound to `local` (pass the
    /// real local address, not 0.0.0.0, or "no NAT" cannot be detected).
    /// Transaction IDs are `tid_base` with the last byte varied per test: pass
    /// [`TransactionId::random`] in production.
    pub fn new(
        now: Instant,
        local: SocketAddr,
        server: SocketAddr,
        tid_base: TransactionId,
        config: NatProbeConfig,
    ) -> Self {
        let mut p = Self {
            config,
            local,
            server,
            tid_base,
            step: None,
            destination: server,
            expected_source: None,
            txn: None,
            mapped1: None,
            mapped2: None,
            other: None,
            origin: None,
            filtering: None,
            result: None,
            ignored: 0,
        };
        p.start(now, Step::Test1);
        p
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        let destination = self.destination;
        let payload = self.txn.as_mut()?.poll_transmit()?;
        Some(Transmit {
            destination,
            payload,
        })
    }

    /// When to call [`NatProbe::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.txn.as_ref()?.poll_timeout()
    }

    /// Advances time.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(txn) = self.txn.as_mut() else {
            return;
        };
        txn.handle_timeout(now);
        if txn.state() == TransactionState::TimedOut {
            self.on_no_answer(now);
        }
    }

    /// Offers a datagram received from `from`; returns `true` if it was the
    /// awaited answer.
    pub fn handle_response(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) -> bool {
        let Ok(msg) = Message::parse(datagram) else {
            return false;
        };
        let Some(txn) = self.txn.as_mut() else {
            return false;
        };
        if msg.transaction_id() != txn.transaction_id() {
            return false;
        }
        if let Some(expected) = self.expected_source {
            if from != expected {
                self.ignored += 1;
                return false;
            }
        }
        if !txn.handle_response(now, &msg) {
            return false;
        }
        if msg.class() == Class::Error {
            self.finish(NatType::Unknown, None);
            return true;
        }
        let Ok(Some(mapped)) = msg.reflexive_address() else {
            self.finish(NatType::Unknown, None);
            return true;
        };
        self.on_answer(now, &msg, mapped);
        true
    }

    /// The verdict, once every test has run.
    pub fn result(&self) -> Option<&NatProbeResult> {
        self.result.as_ref()
    }

    /// Answers dropped because they came from an unexpected source.
    pub fn ignored(&self) -> u32 {
        self.ignored
    }

    fn start(&mut self, now: Instant, step: Step) {
        let (destination, change, expected) = match (step, self.other) {
            (Step::Test1, _) => (self.server, None, None),
            (Step::FilterBoth, Some(a)) => (
                self.server,
                Some(ChangeRequest {
                    change_ip: true,
                    change_port: true,
                }),
                Some(a),
            ),
            (Step::FilterPort, Some(a)) => (
                self.server,
                Some(ChangeRequest {
                    change_ip: false,
                    change_port: true,
                }),
                Some(SocketAddr::new(self.server.ip(), a.port())),
            ),
            (Step::Map2, Some(a)) => {
                let d = SocketAddr::new(a.ip(), self.server.port());
                (d, None, Some(d))
            }
            (Step::Map3, Some(a)) => (a, None, Some(a)),
            _ => {
                self.finish(NatType::Unknown, None);
                return;
            }
        };
        let mut tid = self.tid_base;
        tid.0[11] ^= match step {
            Step::Test1 => 0,
            Step::FilterBoth => 1,
            Step::FilterPort => 2,
            Step::Map2 => 3,
            Step::Map3 => 4,
        };
        let mut buf = Vec::with_capacity(32);
        let mut w = MessageWriter::new(&mut buf, Method::BINDING, Class::Request, tid);
        if let Some(c) = change {
            w.add_change_request(c);
        }
        w.add_fingerprint();
        if w.finish().is_err() {
            self.finish(NatType::Unknown, None);
            return;
        }
        self.step = Some(step);
        self.destination = destination;
        self.expected_source = expected;
        self.txn = Some(ClientTransaction::new(
            now,
            buf,
            self.config.rto,
            self.config.rc,
            self.config.rm,
            false,
        ));
    }

    fn on_answer(&mut self, now: Instant, msg: &Message<'_>, mapped: SocketAddr) {
        match self.step {
            Some(Step::Test1) => {
                self.mapped1 = Some(mapped);
                self.origin = msg.response_origin().ok().flatten();
                self.other = msg.other_address().ok().flatten();
                if self.other.is_none() {
                    self.finish(NatType::Unknown, None);
                } else {
                    self.start(now, Step::FilterBoth);
                }
            }
            Some(Step::FilterBoth) => {
                self.filtering = Some(FilteringBehavior::EndpointIndependent);
                self.after_filtering(now);
            }
            Some(Step::FilterPort) => {
                self.filtering = Some(FilteringBehavior::AddressDependent);
                self.after_filtering(now);
            }
            Some(Step::Map2) => {
                if Some(mapped) == self.mapped1 {
                    self.classify_with(MappingBehavior::EndpointIndependent);
                } else {
                    self.mapped2 = Some(mapped);
                    self.start(now, Step::Map3);
                }
            }
            Some(Step::Map3) => {
                let m = if Some(mapped) == self.mapped2 {
                    MappingBehavior::AddressDependent
                } else {
                    MappingBehavior::AddressAndPortDependent
                };
                self.classify_with(m);
            }
            None => {}
        }
    }

    fn on_no_answer(&mut self, now: Instant) {
        match self.step {
            Some(Step::Test1) => self.finish(NatType::UdpBlocked, None),
            Some(Step::FilterBoth) => self.start(now, Step::FilterPort),
            Some(Step::FilterPort) => {
                self.filtering = Some(FilteringBehavior::AddressAndPortDependent);
                self.after_filtering(now);
            }
            Some(Step::Map2 | Step::Map3) | None => self.finish(NatType::Unknown, None),
        }
    }

    fn after_filtering(&mut self, now: Instant) {
        if self.mapped1 == Some(self.local) {
            let t = if self.filtering == Some(FilteringBehavior::EndpointIndependent) {
                NatType::OpenInternet
            } else {
                NatType::SymmetricUdpFirewall
            };
            self.finish(t, Some(MappingBehavior::EndpointIndependent));
        } else {
            self.start(now, Step::Map2);
        }
    }

    fn classify_with(&mut self, mapping: MappingBehavior) {
        let t = match (mapping, self.filtering) {
            (
                MappingBehavior::EndpointIndependent,
                Some(FilteringBehavior::EndpointIndependent),
            ) => NatType::FullCone,
            (MappingBehavior::EndpointIndependent, Some(FilteringBehavior::AddressDependent)) => {
                NatType::RestrictedCone
            }
            (MappingBehavior::EndpointIndependent, _) => NatType::PortRestrictedCone,
            _ => NatType::Symmetric,
        };
        self.finish(t, Some(mapping));
    }

    fn finish(&mut self, nat_type: NatType, mapping: Option<MappingBehavior>) {
        self.step = None;
        self.txn = None;
        self.result = Some(NatProbeResult {
            nat_type,
            mapped: self.mapped1,
            mapping,
            filtering: self.filtering,
            other_address: self.other,
            response_origin: self.origin,
        });
    }
}
