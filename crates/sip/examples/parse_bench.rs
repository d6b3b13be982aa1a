//! Parser micro-benchmark: parses a typical INVITE (with SDP) in a loop and
//! prints messages per second. Run with `cargo run --release --example parse_bench`.

use std::time::Instant;

use natter_sip::Message;

const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;rport\r\n\
Max-Forwards: 70\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@client.atlanta.example.com;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, MESSAGE, INFO, UPDATE\r\n\
Supported: replaces, timer\r\n\
User-Agent: natter-bench/0.1\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 151\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

fn main() {
    let iterations: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    // Sanity: the message parses and its body length matches.
    let m = Message::parse(INVITE).expect("benchmark message parses");
    assert_eq!(m.body.len(), 151);
    let start = Instant::now();
    let mut checksum = 0usize;
    for _ in 0..iterations {
        if let Ok(m) = Message::parse(std::hint::black_box(INVITE)) {
            checksum += m.headers.len();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let write_start = Instant::now();
    for _ in 0..iterations {
        checksum += std::hint::black_box(&m).to_bytes().len();
    }
    let write_secs = write_start.elapsed().as_secs_f64();
    println!(
        "INVITE parse+validate: {:.0} msgs/s ({:.2} us/msg); write: {:.0} msgs/s (checksum {checksum})",
        f64::from(iterations) / secs,
        secs * 1e6 / f64::from(iterations),
        f64::from(iterations) / write_secs,
    );
}
