//! The UDP driver sharded over several threads (SO_REUSEPORT): requests from
//! many senders spread over the shards, while every response from the one
//! callee arrives on a single shard; each must still reach the shard that
//! owns its transaction (named in the branch), or the callers never get it.

use std::net::SocketAddr;

use natter_sip::Message;
use tokio::net::UdpSocket;

mod common;

/// bob registers from one socket: every response he sends has one 4-tuple.
async fn register_bob(proxy: SocketAddr) -> UdpSocket {
    let bob = UdpSocket::bind("127.0.0.1:0").await.expect("bob");
    let bob_addr = bob.local_addr().expect("addr");
    let reg = format!(
        "REGISTER sip:natter.test SIP/2.0\r\nVia: SIP/2.0/UDP {bob_addr};branch=z9hG4bKreg;rport\r\nMax-Forwards: 70\r\n\
From: <sip:bob@natter.test>;tag=r\r\nTo: <sip:bob@natter.test>\r\nCall-ID: reg@test\r\nCSeq: 1 REGISTER\r\n\
Contact: <sip:bob@{bob_addr}>\r\nContent-Length: 0\r\n\r\n"
    );
    bob.send_to(reg.as_bytes(), proxy).await.expect("send");
    assert_eq!(common::recv_response(&bob).await.code(), Some(200));
    bob
}

/// bob answers a request the proxy forwarded with 200; returns the shard its branch names.
async fn answer_as_bob(bob: &UdpSocket, proxy: SocketAddr, m: &Message<'_>) -> String {
    let branch = m
        .top_via()
        .expect("via")
        .branch()
        .expect("branch")
        .to_owned();
    let resp = Message::response_to(m, 200, None, Some("bob"));
    bob.send_to(&resp.to_bytes(), proxy).await.expect("send");
    branch
        .strip_prefix("z9hG4bK-nt")
        .and_then(|b| b.split('.').next())
        .expect("our branch")
        .to_owned()
}

#[tokio::test]
async fn responses_find_the_shard_that_owns_their_transaction() {
    let mut cfg = common::udp_proxy_config();
    cfg.udp_shards = 4;
    let (proxy, stats) = common::start(cfg).await;
    let bob = register_bob(proxy).await;

    // 24 callers, each from its own port (so spread over the shards).
    const CALLERS: usize = 24;
    let mut callers = Vec::new();
    for i in 0..CALLERS {
        let s = UdpSocket::bind("127.0.0.1:0").await.expect("caller");
        let me = s.local_addr().expect("addr");
        let msg = format!(
            "MESSAGE sip:bob@natter.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKm{i};rport\r\nMax-Forwards: 70\r\n\
From: <sip:alice{i}@natter.test>;tag=a{i}\r\nTo: <sip:bob@natter.test>\r\nCall-ID: m{i}@test\r\nCSeq: 1 MESSAGE\r\n\
Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
        );
        s.send_to(msg.as_bytes(), proxy).await.expect("send");
        callers.push(s);
    }
    // bob answers every forwarded MESSAGE with 200 from his one socket.
    let mut shards_seen = std::collections::BTreeSet::new();
    for _ in 0..CALLERS {
        let m = common::recv_response(&bob).await;
        shards_seen.insert(answer_as_bob(&bob, proxy, &m).await);
    }
    for (i, s) in callers.iter().enumerate() {
        let r = common::recv_response(s).await;
        assert_eq!(r.code(), Some(200), "caller {i}");
    }
    assert!(
        shards_seen.len() > 1,
        "24 senders all hashed to one shard ({shards_seen:?}): nothing crossed shards"
    );
    let live = stats.get().expect("running");
    assert_eq!(live.core.registrations, 1);
    assert_eq!(live.core.forwarded, CALLERS as u64);
    // A response handled by a shard without its transaction would still
    // reach the caller, relayed statelessly by its Via (§16.7), while the
    // owner kept retransmitting: none may have gone that way.
    assert_eq!(
        live.core.stateless, 0,
        "responses relayed without their transaction"
    );
}

/// The shard numbers named in the branches of what bob receives for `msgs` MESSAGEs sent by
/// one caller socket (one 4-tuple) with distinct Call-IDs; the first MESSAGE is sent twice
/// (a retransmission). Every caller's transaction must end with bob's 200.
async fn one_flow_shards(spread_by_call_id: bool, msgs: usize) -> (Vec<String>, u64, u64) {
    let mut cfg = common::udp_proxy_config();
    cfg.udp_shards = 4;
    cfg.spread_by_call_id = spread_by_call_id;
    let (proxy, stats) = common::start(cfg).await;
    let bob = register_bob(proxy).await;

    let caller = UdpSocket::bind("127.0.0.1:0").await.expect("caller");
    let me = caller.local_addr().expect("addr");
    for i in 0..msgs {
        let msg = format!(
            "MESSAGE sip:bob@natter.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKm{i};rport\r\nMax-Forwards: 70\r\n\
From: <sip:alice@natter.test>;tag=a{i}\r\nTo: <sip:bob@natter.test>\r\nCall-ID: m{i}@test\r\nCSeq: 1 MESSAGE\r\n\
Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
        );
        caller.send_to(msg.as_bytes(), proxy).await.expect("send");
        if i == 0 {
            caller.send_to(msg.as_bytes(), proxy).await.expect("resend");
        }
    }
    let mut shards = Vec::new();
    let mut call_ids = std::collections::BTreeSet::new();
    for _ in 0..msgs {
        let m = common::recv_response(&bob).await;
        // The retransmission was absorbed by the transaction of the original: each
        // Call-ID reaches bob once.
        assert!(
            call_ids.insert(m.call_id().expect("Call-ID").to_owned()),
            "a request forwarded twice"
        );
        shards.push(answer_as_bob(&bob, proxy, &m).await);
    }
    // Every caller transaction ends with bob's 200 (the retransmission may get it twice).
    let mut answered = std::collections::BTreeSet::new();
    while answered.len() < msgs {
        let r = common::recv_response(&caller).await;
        assert_eq!(r.code(), Some(200));
        answered.insert(r.call_id().expect("Call-ID").to_owned());
    }
    let live = stats.get().expect("running");
    assert_eq!(live.core.forwarded, msgs as u64);
    assert_eq!(
        live.core.stateless, 0,
        "responses relayed without their transaction"
    );
    (shards, live.handed_over, live.handoff_drops)
}

#[tokio::test]
async fn one_sender_stays_on_one_shard_by_default() {
    let (shards, handed, drops) = one_flow_shards(false, 24).await;
    let distinct: std::collections::BTreeSet<_> = shards.iter().collect();
    assert_eq!(distinct.len(), 1, "one 4-tuple, one shard: {shards:?}");
    // Only bob's responses may cross (his socket may hash to another shard).
    assert!(handed <= 24, "{handed} handed over");
    assert_eq!(drops, 0);
}

#[tokio::test]
async fn one_sender_spreads_over_the_shards_by_call_id() {
    let (shards, handed, drops) = one_flow_shards(true, 24).await;
    let distinct: std::collections::BTreeSet<_> = shards.iter().collect();
    assert!(
        distinct.len() > 1,
        "24 Call-IDs from one 4-tuple all served by one shard: {shards:?}"
    );
    // Requests owned elsewhere crossed, with the retransmission following its original.
    assert!(handed > 0);
    assert_eq!(drops, 0);
}
