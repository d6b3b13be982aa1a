//! A tiny SIP registrar/proxy on the natter stack, for SIPp and baresip runs.
//!
//! ```text
//! cargo run -p natter-sip-io --example sip_server -- \
//!     --listen 127.0.0.1:5060 --domain natter.test --user alice:secret [--no-auth] [--redirect]
//! ```
//! Stops on Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;

use natter_sip_io::{serve, Mode, SipServeConfig};
use natter_sip_server::{MemoryBindings, StaticCredentials};

fn usage() -> ! {
    eprintln!("usage: sip_server [--listen ADDR]... [--domain D] [--user NAME:PASS]... [--no-auth] [--redirect] [--udp-only] [--advertise HOST] [--ws ADDR]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut listen: Vec<SocketAddr> = Vec::new();
    let mut domain = "natter.test".to_owned();
    let mut creds = StaticCredentials::new();
    let mut auth = true;
    let mut redirect = false;
    let mut udp_only = false;
    let mut advertise = None;
    let mut ws_listen: Vec<SocketAddr> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => match args.next().and_then(|v| v.parse().ok()) {
                Some(v) => listen.push(v),
                None => usage(),
            },
            "--domain" => domain = args.next().unwrap_or_else(|| usage()),
            "--user" => {
                let v = args.next().unwrap_or_else(|| usage());
                let Some((u, p)) = v.split_once(':') else {
                    usage()
                };
                creds = creds.with_user(u, p);
            }
            "--no-auth" => auth = false,
            "--redirect" => redirect = true,
            "--udp-only" => udp_only = true,
            "--advertise" => advertise = Some(args.next().unwrap_or_else(|| usage())),
            "--ws" => match args.next().and_then(|v| v.parse().ok()) {
                Some(v) => ws_listen.push(v),
                None => usage(),
            },
            _ => usage(),
        }
    }
    if listen.is_empty() {
        listen.push(SocketAddr::from(([127, 0, 0, 1], 5060)));
    }
    let mut cfg = SipServeConfig::new(&domain, listen[0]);
    cfg.udp = listen.clone();
    cfg.tcp = if udp_only { Vec::new() } else { listen.clone() };
    cfg.server.auth = auth;
    cfg.server.advertise = advertise;
    cfg.ws_listen = ws_listen;
    cfg.server.mode = if redirect {
        Mode::Redirect
    } else {
        Mode::Proxy
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = tx.send(true);
    });
    eprintln!("natter sip_server: domain {domain}, listening on {listen:?}, auth {auth}");
    if let Err(e) = serve(cfg, Arc::new(creds), Arc::new(MemoryBindings::new()), rx).await {
        eprintln!("sip_server: {e}");
        std::process::exit(1);
    }
}
