//! Transaction keys (§17.1.3 client matching, §17.2.3 server matching with
//! the RFC 2543 fallback for branches without the magic cookie).

use crate::error::ParseError;
use crate::message::Message;
use crate::method::Method;
use crate::via::MAGIC_COOKIE;

/// Identifies a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransactionKey {
    /// RFC 3261: branch + sent-by (server side only; empty on the client
    /// side) + method (ACK folded into INVITE on the server side).
    Branch {
        /// Via branch.
        branch: String,
        /// Top Via sent-by (servers) or empty (clients).
        sent_by: String,
        /// Method the transaction was created for.
        method: String,
    },
    /// RFC 2543 fallback: Request-URI, From tag, Call-ID, CSeq, top Via.
    /// (The To tag of an ACK is checked against the response separately.)
    Rfc2543 {
        /// Request-URI as written.
        request_uri: String,
        /// From tag.
        from_tag: String,
        /// Call-ID.
        call_id: String,
        /// CSeq number.
        cseq: u32,
        /// Method (ACK folded into INVITE).
        method: String,
        /// Whole top Via value.
        via: String,
    },
}

fn server_method(m: &Method<'_>) -> String {
    match m {
        Method::Ack => "INVITE".to_owned(),
        other => other.as_str().to_owned(),
    }
}

impl TransactionKey {
    /// Key of the server transaction a received request belongs to.
    pub fn server(req: &Message<'_>) -> Result<TransactionKey, ParseError> {
        let method = req.method().ok_or(ParseError::StartLine("not a request"))?;
        Self::server_with_method(req, server_method(method))
    }

    /// Key of the INVITE server transaction a CANCEL refers to (§9.2).
    pub fn cancel_target(cancel: &Message<'_>) -> Result<TransactionKey, ParseError> {
        Self::server_with_method(cancel, "INVITE".to_owned())
    }

    fn server_with_method(req: &Message<'_>, method: String) -> Result<TransactionKey, ParseError> {
        let via = req.top_via()?;
        match via.branch() {
            Some(b) if b.starts_with(MAGIC_COOKIE) => Ok(TransactionKey::Branch {
                branch: b.to_owned(),
                sent_by: via.sent_by(),
                method,
            }),
            _ => Ok(TransactionKey::Rfc2543 {
                request_uri: req.request_uri_str().unwrap_or("").to_owned(),
                from_tag: req.from_tag().unwrap_or("").to_owned(),
                call_id: req.call_id()?.to_owned(),
                cseq: req.cseq()?.seq,
                method,
                via: via.to_string(),
            }),
        }
    }

    /// Key of a client transaction: from the request being sent or from a
    /// response received (top Via branch + CSeq method).
    pub fn client(msg: &Message<'_>) -> Result<TransactionKey, ParseError> {
        let via = msg.top_via()?;
        let branch = via.branch().ok_or(ParseError::BadHeader("Via"))?;
        Ok(TransactionKey::Branch {
            branch: branch.to_owned(),
            sent_by: String::new(),
            method: msg.cseq()?.method.as_str().to_owned(),
        })
    }
}
