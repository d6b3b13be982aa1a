//! The one-shot client (`natter sip options|register`) over TCP and TLS
//! against the real server: digest REGISTER and OPTIONS, TLS with the server
//! certificate as trust anchor, with `insecure`, and refused without trust.
// The shared helpers are not #[test] functions, so the test unwrap allowance misses them.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use natter_sip_io::client::{self, ClientConfig, ClientTransport, Direction, TlsTrust};
use natter_sip_io::{bind, SipServeConfig};
use natter_sip_server::{MemoryBindings, StaticCredentials, Transport};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

fn client_cfg(server: SocketAddr) -> ClientConfig {
    ClientConfig {
        server,
        bind: "127.0.0.1:0".parse().unwrap(),
        user: "alice".into(),
        domain: "natter.test".into(),
        password: Some("pw".into()),
        timeout: Duration::from_secs(5),
        contact: None,
    }
}

async fn register_and_options(c: &ClientConfig, t: &ClientTransport, via: &str) {
    let ex = client::register_over(c, t, 300).await.unwrap();
    assert_eq!(ex.code, 200);
    // REGISTER, 401, REGISTER with credentials, 200: no retransmissions on a stream.
    let dirs: Vec<Direction> = ex.log.iter().map(|(d, _)| *d).collect();
    assert_eq!(
        dirs,
        vec![
            Direction::Sent,
            Direction::Received,
            Direction::Sent,
            Direction::Received
        ]
    );
    assert!(ex.log[0].1.contains(&format!("Via: SIP/2.0/{via} ")));
    assert!(ex.log[1].1.starts_with("SIP/2.0 401"));
    assert!(ex.log[2]
        .1
        .contains("Authorization: Digest username=\"alice\""));
    let ex = client::options_over(c, t, "sip:natter.test").await.unwrap();
    assert_eq!(ex.code, 200);
    let mut wrong = c.clone();
    wrong.password = Some("nope".into());
    assert_eq!(
        client::register_over(&wrong, t, 300).await.unwrap().code,
        403
    );
}

#[tokio::test]
async fn options_and_register_over_tcp_and_tls() {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert_der = cert.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
    let server_tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("natter-sipcli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("server.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();

    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut cfg = SipServeConfig::new("natter.test", any);
    cfg.udp.clear();
    cfg.tls_listen = vec![any];
    cfg.tls = Some(Arc::new(server_tls));
    let creds = StaticCredentials::new().with_user("alice", "pw");
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (bound, fut) = bind(cfg, Arc::new(creds), Arc::new(MemoryBindings::new()), rx)
        .await
        .unwrap();
    let tcp_addr = bound.of(Transport::Tcp)[0];
    let tls_addr = bound.of(Transport::Tls)[0];
    let server = tokio::spawn(fut);

    register_and_options(&client_cfg(tcp_addr), &ClientTransport::Tcp, "TCP").await;

    let trusted = ClientTransport::Tls(TlsTrust {
        ca: Some(ca.clone()),
        insecure: false,
        server_name: "localhost".into(),
    });
    register_and_options(&client_cfg(tls_addr), &trusted, "TLS").await;
    // The certificate also names the address.
    let by_ip = ClientTransport::Tls(TlsTrust {
        ca: Some(ca.clone()),
        insecure: false,
        server_name: "127.0.0.1".into(),
    });
    let ex = client::options_over(&client_cfg(tls_addr), &by_ip, "sip:natter.test")
        .await
        .unwrap();
    assert_eq!(ex.code, 200);

    let insecure = ClientTransport::Tls(TlsTrust {
        ca: None,
        insecure: true,
        server_name: "other.example".into(),
    });
    register_and_options(&client_cfg(tls_addr), &insecure, "TLS").await;

    // Trusting the certificate but naming another host: the handshake fails.
    let wrong_name = ClientTransport::Tls(TlsTrust {
        ca: Some(ca.clone()),
        insecure: false,
        server_name: "other.example".into(),
    });
    assert!(
        client::options_over(&client_cfg(tls_addr), &wrong_name, "sip:natter.test")
            .await
            .is_err()
    );
    // Neither a CA nor insecure: refused before connecting anywhere.
    let none = ClientTransport::Tls(TlsTrust {
        ca: None,
        insecure: false,
        server_name: "localhost".into(),
    });
    assert!(matches!(
        client::options_over(&client_cfg(tls_addr), &none, "sip:natter.test").await,
        Err(natter_sip_io::Error::Config(_))
    ));

    std::fs::remove_dir_all(&dir).unwrap();
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
