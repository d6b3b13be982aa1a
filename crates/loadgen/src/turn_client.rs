//! The TURN control exchanges a benchmark needs (Allocate, CreatePermission, ChannelBind,
//! Refresh), with RFC 8656 long-term credentials, over one connected blocking UDP socket.
//!
//! This is deliberately not a general TURN client (that is `natter-turn`'s job): it runs one
//! transaction at a time, retransmits on a short loopback-sized timer, and keeps no state but
//! the realm, nonce and key learnt from the server's 401. Messages are built and parsed with
//! `natter-stun`; the pure halves ([`build_request`], [`read_answer`]) are separate from the
//! socket so they can be tested on exact bytes.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter_stun::credentials::long_term_key;
use natter_stun::{
    ChannelData, Class, EncodeError, Message, MessageWriter, Method, TransactionId, PROTOCOL_UDP,
};

/// Allocation lifetime asked for, seconds (RFC 8656 default).
pub const DEFAULT_LIFETIME: u32 = 600;
/// First retransmission timeout: loopback answers in microseconds, so 250 ms only fires when
/// the server is overloaded or dropped the request.
pub const INITIAL_RTO: Duration = Duration::from_millis(250);
/// Sends per transaction before giving up (the wait doubles each time: 250 ms .. 2 s).
pub const MAX_SENDS: u32 = 4;
/// Authentication rounds (401 or 438 answers) per transaction before giving up.
pub const MAX_AUTH_ROUNDS: u32 = 2;

/// Why a control exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// `--user` was not `USER:PASSWORD`.
    #[error("bad credentials format, expected USER:PASSWORD")]
    BadCredentials,
    /// The request could not be encoded.
    #[error("encode: {0}")]
    Encode(#[from] EncodeError),
    /// Socket failure.
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    /// The answer was not usable (missing attribute, not STUN).
    #[error("malformed answer: {0}")]
    Malformed(&'static str),
    /// The server answered with an error code other than a recoverable 401/438.
    #[error("{method} rejected: {code} {reason}")]
    Rejected {
        /// Method of the request.
        method: &'static str,
        /// ERROR-CODE number.
        code: u16,
        /// Reason phrase.
        reason: String,
    },
    /// No answer after all retransmissions.
    #[error("{0} timed out")]
    Timeout(&'static str),
    /// The server kept asking for credentials.
    #[error("{0}: credentials refused")]
    Unauthorized(&'static str),
}

/// Long-term credentials, `USER:PASSWORD` on the command line.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Credentials {
    /// USERNAME.
    pub username: String,
    /// Password (the key is derived with the realm the server names).
    pub password: String,
}

impl FromStr for Credentials {
    type Err = TurnError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (username, password) = text.split_once(':').ok_or(TurnError::BadCredentials)?;
        if username.is_empty() {
            return Err(TurnError::BadCredentials);
        }
        Ok(Self {
            username: username.to_string(),
            password: password.to_string(),
        })
    }
}

/// What the server told us to authenticate with.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Auth {
    /// REALM from the 401.
    pub realm: String,
    /// NONCE from the latest 401/438.
    pub nonce: String,
    /// MD5(username:realm:password).
    pub key: [u8; 16],
}

/// The part of a request that differs between methods.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Request {
    /// Allocate a UDP relay for `lifetime` seconds.
    Allocate {
        /// LIFETIME asked for.
        lifetime: u32,
    },
    /// Install a permission for `peer`.
    CreatePermission {
        /// XOR-PEER-ADDRESS.
        peer: SocketAddr,
    },
    /// Bind `channel` to `peer` (also installs the permission).
    ChannelBind {
        /// XOR-PEER-ADDRESS.
        peer: SocketAddr,
        /// CHANNEL-NUMBER.
        channel: u16,
    },
    /// Refresh the allocation; lifetime 0 deletes it.
    Refresh {
        /// LIFETIME.
        lifetime: u32,
    },
}

impl Request {
    fn method(self) -> Method {
        match self {
            Self::Allocate { .. } => Method::ALLOCATE,
            Self::CreatePermission { .. } => Method::CREATE_PERMISSION,
            Self::ChannelBind { .. } => Method::CHANNEL_BIND,
            Self::Refresh { .. } => Method::REFRESH,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Allocate { .. } => "Allocate",
            Self::CreatePermission { .. } => "CreatePermission",
            Self::ChannelBind { .. } => "ChannelBind",
            Self::Refresh { .. } => "Refresh",
        }
    }
}

/// How an answer moves the exchange on.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Answer {
    /// Success; for Allocate, the relayed address.
    Success {
        /// XOR-RELAYED-ADDRESS of an Allocate success.
        relayed: Option<SocketAddr>,
    },
    /// 401 or 438 with a realm and nonce: retry with these.
    Challenge {
        /// REALM (kept from before when a 438 omits it).
        realm: String,
        /// Fresh NONCE.
        nonce: String,
    },
}

/// Encodes `request` into `buf` with transaction `tid`, signed with `auth` when there is one
/// (USERNAME, REALM, NONCE, MESSAGE-INTEGRITY), always followed by FINGERPRINT.
pub fn build_request(
    buf: &mut Vec<u8>,
    request: Request,
    tid: TransactionId,
    username: &str,
    auth: Option<&Auth>,
) -> Result<usize, TurnError> {
    let mut writer = MessageWriter::new(buf, request.method(), Class::Request, tid);
    match request {
        Request::Allocate { lifetime } => {
            writer
                .add_requested_transport(PROTOCOL_UDP)
                .add_lifetime(lifetime);
        }
        Request::CreatePermission { peer } => {
            writer.add_xor_peer_address(peer);
        }
        Request::ChannelBind { peer, channel } => {
            writer
                .add_channel_number(channel)
                .add_xor_peer_address(peer);
        }
        Request::Refresh { lifetime } => {
            writer.add_lifetime(lifetime);
        }
    }
    if let Some(auth) = auth {
        writer
            .add_username(username)
            .add_realm(&auth.realm)
            .add_nonce(&auth.nonce)
            .add_message_integrity(&auth.key);
    }
    writer.add_fingerprint();
    Ok(writer.finish()?)
}

/// Reads the answer to a request of kind `request` and transaction `tid`.
///
/// `Ok(None)`: not an answer to this transaction (stray, late retransmission answer, not STUN);
/// keep waiting. `previous_realm` fills in the realm when a 438 answer leaves it out.
pub fn read_answer(
    packet: &[u8],
    request: Request,
    tid: TransactionId,
    previous_realm: Option<&str>,
) -> Result<Option<Answer>, TurnError> {
    let Ok(message) = Message::parse(packet) else {
        return Ok(None);
    };
    if message.transaction_id() != tid || message.method() != request.method() {
        return Ok(None);
    }
    match message.class() {
        Class::Success => {
            let relayed = match request {
                Request::Allocate { .. } => Some(
                    message
                        .xor_relayed_address()
                        .map_err(|_| TurnError::Malformed("bad XOR-RELAYED-ADDRESS"))?
                        .ok_or(TurnError::Malformed("no XOR-RELAYED-ADDRESS"))?,
                ),
                _ => None,
            };
            Ok(Some(Answer::Success { relayed }))
        }
        Class::Error => {
            let error = message
                .error_code()
                .map_err(|_| TurnError::Malformed("bad ERROR-CODE"))?
                .ok_or(TurnError::Malformed("error answer without ERROR-CODE"))?;
            if error.code == 401 || error.code == 438 {
                let nonce = message.nonce().ok().flatten();
                let realm = message.realm().ok().flatten().or(previous_realm);
                if let (Some(nonce), Some(realm)) = (nonce, realm) {
                    return Ok(Some(Answer::Challenge {
                        realm: realm.to_string(),
                        nonce: nonce.to_string(),
                    }));
                }
            }
            Err(TurnError::Rejected {
                method: request.name(),
                code: error.code,
                reason: error.reason.to_string(),
            })
        }
        Class::Request | Class::Indication => Ok(None),
    }
}

/// One client 5-tuple with (at most) one allocation on it.
pub struct TurnClient {
    socket: Arc<UdpSocket>,
    credentials: Credentials,
    auth: Option<Auth>,
    relayed: Option<SocketAddr>,
    buf: Vec<u8>,
}

impl TurnClient {
    /// A client on `socket`, which must already be connected to the server.
    pub fn new(socket: Arc<UdpSocket>, credentials: Credentials) -> Self {
        Self {
            socket,
            credentials,
            auth: None,
            relayed: None,
            buf: Vec::with_capacity(256),
        }
    }

    /// Allocates a UDP relay; returns the relayed address.
    pub fn allocate(&mut self, lifetime: u32) -> Result<SocketAddr, TurnError> {
        let answer = self.transact(Request::Allocate { lifetime })?;
        let relayed = answer.ok_or(TurnError::Malformed("no XOR-RELAYED-ADDRESS"))?;
        self.relayed = Some(relayed);
        Ok(relayed)
    }

    /// Installs a permission for `peer`.
    pub fn create_permission(&mut self, peer: SocketAddr) -> Result<(), TurnError> {
        self.transact(Request::CreatePermission { peer })
            .map(|_| ())
    }

    /// Binds `channel` to `peer`.
    pub fn channel_bind(&mut self, peer: SocketAddr, channel: u16) -> Result<(), TurnError> {
        self.transact(Request::ChannelBind { peer, channel })
            .map(|_| ())
    }

    /// Refreshes the allocation; `0` deletes it.
    pub fn refresh(&mut self, lifetime: u32) -> Result<(), TurnError> {
        self.transact(Request::Refresh { lifetime }).map(|_| ())
    }

    /// The relayed address of the allocation, once allocated.
    pub fn relayed(&self) -> Option<SocketAddr> {
        self.relayed
    }

    /// Runs one request to completion: retransmits, and answers 401/438 challenges by signing
    /// the request with the (new) nonce.
    fn transact(&mut self, request: Request) -> Result<Option<SocketAddr>, TurnError> {
        let mut rounds = 0;
        loop {
            let tid = TransactionId::random();
            build_request(
                &mut self.buf,
                request,
                tid,
                &self.credentials.username,
                self.auth.as_ref(),
            )?;
            match self.exchange(request, tid)? {
                Answer::Success { relayed } => return Ok(relayed),
                Answer::Challenge { realm, nonce } => {
                    rounds += 1;
                    if rounds > MAX_AUTH_ROUNDS {
                        return Err(TurnError::Unauthorized(request.name()));
                    }
                    let key = long_term_key(
                        &self.credentials.username,
                        &realm,
                        &self.credentials.password,
                    );
                    self.auth = Some(Auth { realm, nonce, key });
                }
            }
        }
    }

    /// Sends the request in `self.buf` and waits for its answer, retransmitting.
    fn exchange(&mut self, request: Request, tid: TransactionId) -> Result<Answer, TurnError> {
        let mut inbound = [0u8; 2048];
        let mut rto = INITIAL_RTO;
        for _ in 0..MAX_SENDS {
            self.socket.send(&self.buf)?;
            let deadline = Instant::now() + rto;
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                self.socket.set_read_timeout(Some(deadline - now))?;
                let len = match self.socket.recv(&mut inbound) {
                    Ok(len) => len,
                    Err(err)
                        if matches!(
                            err.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) =>
                    {
                        continue;
                    }
                    Err(err) => return Err(err.into()),
                };
                let realm = self.auth.as_ref().map(|a| a.realm.as_str());
                if let Some(answer) = read_answer(&inbound[..len], request, tid, realm)? {
                    return Ok(answer);
                }
            }
            rto *= 2;
        }
        Err(TurnError::Timeout(request.name()))
    }
}

/// A ChannelData message (UDP: no padding) carrying `data` on `channel`.
pub fn channel_data(channel: u16, data: &[u8]) -> Result<Vec<u8>, TurnError> {
    let mut out = Vec::with_capacity(4 + data.len());
    ChannelData::encode(channel, data, false, &mut out)
        .map_err(|_| TurnError::Malformed("channel number or payload out of range"))?;
    Ok(out)
}

/// A Send indication carrying `data` to `peer`. The generator reuses one per session: servers
/// do not track indication transaction ids, so a fixed id costs them nothing extra.
pub fn send_indication(peer: SocketAddr, data: &[u8]) -> Result<Vec<u8>, TurnError> {
    let mut out = Vec::with_capacity(40 + data.len());
    MessageWriter::new(
        &mut out,
        Method::SEND,
        Class::Indication,
        TransactionId::random(),
    )
    .add_xor_peer_address(peer)
    .add_data(data)
    .finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: TransactionId = TransactionId([7; 12]);

    fn peer() -> SocketAddr {
        "192.0.2.10:4000".parse().unwrap()
    }

    fn auth() -> Auth {
        Auth {
            realm: "natter".into(),
            nonce: "n0nce".into(),
            key: long_term_key("u", "natter", "p"),
        }
    }

    #[test]
    fn credentials_parse_user_and_password() {
        assert_eq!(
            "u:p:q".parse::<Credentials>().unwrap(),
            Credentials {
                username: "u".into(),
                password: "p:q".into()
            }
        );
        assert!("nocolon".parse::<Credentials>().is_err());
        assert!(":p".parse::<Credentials>().is_err());
    }

    #[test]
    fn first_allocate_is_unsigned_with_exact_bytes() {
        let mut buf = Vec::new();
        build_request(
            &mut buf,
            Request::Allocate { lifetime: 600 },
            TID,
            "u",
            None,
        )
        .unwrap();
        let mut expected = vec![0x00, 0x03, 0x00, 0x18, 0x21, 0x12, 0xA4, 0x42];
        expected.extend_from_slice(&[7; 12]);
        // REQUESTED-TRANSPORT UDP, LIFETIME 600.
        expected.extend_from_slice(&[0x00, 0x19, 0x00, 0x04, 17, 0, 0, 0]);
        expected.extend_from_slice(&[0x00, 0x0D, 0x00, 0x04, 0x00, 0x00, 0x02, 0x58]);
        // FINGERPRINT header; its value is checked by parsing below.
        expected.extend_from_slice(&[0x80, 0x28, 0x00, 0x04]);
        assert_eq!(&buf[..expected.len()], &expected[..]);
        assert_eq!(buf.len(), expected.len() + 4);
        let message = Message::parse(&buf).unwrap();
        assert!(message.verify_fingerprint().is_ok());
    }

    #[test]
    fn signed_requests_carry_credentials_and_valid_integrity() {
        let mut buf = Vec::new();
        let request = Request::ChannelBind {
            peer: peer(),
            channel: 0x4001,
        };
        build_request(&mut buf, request, TID, "u", Some(&auth())).unwrap();
        let message = Message::parse(&buf).unwrap();
        assert_eq!(message.method(), Method::CHANNEL_BIND);
        assert_eq!(message.channel_number(), Ok(Some(0x4001)));
        assert_eq!(message.xor_peer_address(), Ok(Some(peer())));
        assert_eq!(message.username(), Ok(Some("u")));
        assert_eq!(message.realm(), Ok(Some("natter")));
        assert_eq!(message.nonce(), Ok(Some("n0nce")));
        assert!(message
            .verify_integrity(&long_term_key("u", "natter", "p"))
            .is_ok());
        assert!(message
            .verify_integrity(&long_term_key("u", "natter", "wrong"))
            .is_err());
        assert!(message.verify_fingerprint().is_ok());
    }

    fn answer(
        method: Method,
        class: Class,
        tid: TransactionId,
        build: impl Fn(&mut MessageWriter),
    ) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut writer = MessageWriter::new(&mut buf, method, class, tid);
        build(&mut writer);
        writer.finish().unwrap();
        buf
    }

    #[test]
    fn challenge_gives_realm_and_nonce() {
        let reply = answer(Method::ALLOCATE, Class::Error, TID, |w| {
            w.add_error_code(401, "Unauthorized")
                .add_realm("natter")
                .add_nonce("abc");
        });
        assert_eq!(
            read_answer(&reply, Request::Allocate { lifetime: 600 }, TID, None).unwrap(),
            Some(Answer::Challenge {
                realm: "natter".into(),
                nonce: "abc".into()
            })
        );
    }

    #[test]
    fn stale_nonce_keeps_the_known_realm() {
        let reply = answer(Method::REFRESH, Class::Error, TID, |w| {
            w.add_error_code(438, "Stale Nonce").add_nonce("fresh");
        });
        let request = Request::Refresh { lifetime: 0 };
        assert_eq!(
            read_answer(&reply, request, TID, Some("natter")).unwrap(),
            Some(Answer::Challenge {
                realm: "natter".into(),
                nonce: "fresh".into()
            })
        );
        // Without a known realm a nonce alone cannot be used.
        assert!(matches!(
            read_answer(&reply, request, TID, None),
            Err(TurnError::Rejected { code: 438, .. })
        ));
    }

    #[test]
    fn other_errors_are_rejections() {
        let reply = answer(Method::ALLOCATE, Class::Error, TID, |w| {
            w.add_error_code(486, "Allocation Quota Reached");
        });
        match read_answer(
            &reply,
            Request::Allocate { lifetime: 600 },
            TID,
            Some("natter"),
        ) {
            Err(TurnError::Rejected {
                method,
                code,
                reason,
            }) => {
                assert_eq!((method, code), ("Allocate", 486));
                assert_eq!(reason, "Allocation Quota Reached");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn allocate_success_needs_the_relayed_address() {
        let relayed: SocketAddr = "198.51.100.1:50000".parse().unwrap();
        let reply = answer(Method::ALLOCATE, Class::Success, TID, |w| {
            w.add_xor_relayed_address(relayed).add_lifetime(600);
        });
        let request = Request::Allocate { lifetime: 600 };
        assert_eq!(
            read_answer(&reply, request, TID, None).unwrap(),
            Some(Answer::Success {
                relayed: Some(relayed)
            })
        );
        let bare = answer(Method::ALLOCATE, Class::Success, TID, |_| {});
        assert!(matches!(
            read_answer(&bare, request, TID, None),
            Err(TurnError::Malformed(_))
        ));
    }

    #[test]
    fn answers_to_other_transactions_are_ignored() {
        let other = TransactionId([8; 12]);
        let reply = answer(Method::CREATE_PERMISSION, Class::Success, other, |_| {});
        let request = Request::CreatePermission { peer: peer() };
        assert_eq!(read_answer(&reply, request, TID, None).unwrap(), None);
        let wrong_method = answer(Method::REFRESH, Class::Success, TID, |_| {});
        assert_eq!(
            read_answer(&wrong_method, request, TID, None).unwrap(),
            None
        );
        assert_eq!(read_answer(b"garbage", request, TID, None).unwrap(), None);
        let ok = answer(Method::CREATE_PERMISSION, Class::Success, TID, |_| {});
        assert_eq!(
            read_answer(&ok, request, TID, None).unwrap(),
            Some(Answer::Success { relayed: None })
        );
    }

    #[test]
    fn data_path_messages_have_exact_framing() {
        assert_eq!(
            channel_data(0x4002, b"abc").unwrap(),
            vec![0x40, 0x02, 0x00, 0x03, b'a', b'b', b'c']
        );
        assert!(channel_data(0x3fff, b"abc").is_err());
        let indication = send_indication(peer(), b"hello").unwrap();
        let message = Message::parse(&indication).unwrap();
        assert_eq!(
            (message.method(), message.class()),
            (Method::SEND, Class::Indication)
        );
        assert_eq!(message.xor_peer_address(), Ok(Some(peer())));
        assert_eq!(message.data(), Some(&b"hello"[..]));
    }
}
