//! TEMPORARY stub until natter-stun's writer lands.
use std::net::{SocketAddr, UdpSocket};
use std::str::FromStr;
use std::sync::Arc;

/// Default allocation lifetime asked for, seconds.
pub const DEFAULT_LIFETIME: u32 = 600;

#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error("unavailable")]
    Unavailable,
    #[error("bad credentials format, expected USER:PASSWORD")]
    BadCredentials,
}

#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl FromStr for Credentials {
    type Err = TurnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (u, p) = s.split_once(':').ok_or(TurnError::BadCredentials)?;
        Ok(Self {
            username: u.to_string(),
            password: p.to_string(),
        })
    }
}

pub struct TurnClient {
    _socket: Arc<UdpSocket>,
    _credentials: Credentials,
}

impl TurnClient {
    pub fn new(socket: Arc<UdpSocket>, credentials: Credentials) -> Self {
        Self {
            _socket: socket,
            _credentials: credentials,
        }
    }
    pub fn allocate(&mut self, _lifetime: u32) -> Result<SocketAddr, TurnError> {
        Err(TurnError::Unavailable)
    }
    pub fn channel_bind(&mut self, _peer: SocketAddr, _channel: u16) -> Result<(), TurnError> {
        Err(TurnError::Unavailable)
    }
    pub fn create_permission(&mut self, _peer: SocketAddr) -> Result<(), TurnError> {
        Err(TurnError::Unavailable)
    }
    pub fn refresh(&mut self, _lifetime: u32) -> Result<(), TurnError> {
        Err(TurnError::Unavailable)
    }
}

pub fn channel_data(channel: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + data.len());
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    out
}

pub fn send_indication(_peer: SocketAddr, data: &[u8]) -> Vec<u8> {
    data.to_vec()
}
