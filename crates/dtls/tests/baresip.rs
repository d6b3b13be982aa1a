//! Interop with the peer the softphone must talk to first: baresip 1.0 (libre over OpenSSL
//! 3.0, RSA self-signed certificate). baresip calls a minimal SIP answerer in this test
//! with `mediaenc=dtls_srtp`; we answer `a=setup:active` or `passive`, run DTLS with its RTP
//! port, check its certificate against the fingerprint in its offer, and wait for baresip to
//! log that it verified ours. Then baresip's first SRTP packet must verify (AES-CM/HMAC) or
//! decrypt (AES-GCM) under the keys `srtp_keys` gives us. Skipped (passes) when baresip is not installed;
//! scripts/test installs it.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use natter_dtls::{srtp_keys, DtlsCertificate, DtlsEndpoint, DtlsEvent, DtlsRole};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use openssl::symm::{decrypt_aead, Cipher};

const WALL_LIMIT: Duration = Duration::from_secs(8);

struct Baresip {
    child: Child,
    lines: Receiver<String>,
    dir: PathBuf,
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Baresip {
    fn wait_line(&self, needle: &str, deadline: Instant) -> Option<String> {
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }
}

/// One second of 8 kHz silence as a WAV file, for baresip's `aufile` source.
fn silence_wav() -> Vec<u8> {
    let samples = 8000u32;
    let data_len = samples * 2;
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data_len).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&16000u32.to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data_len.to_le_bytes());
    w.resize(w.len() + data_len as usize, 0);
    w
}

fn start_baresip(target: SocketAddr) -> Option<Baresip> {
    if Command::new("baresip").arg("-h").output().is_err() {
        eprintln!("baresip not installed; skipping");
        return None;
    }
    let dir = std::env::temp_dir().join(format!(
        "natter-dtls-baresip-{}-{}",
        std::process::id(),
        target.port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let wav = dir.join("silence.wav");
    std::fs::write(&wav, silence_wav()).unwrap();
    let sip_port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rtp_base = 20000 + (target.port() % 20000) / 2 * 2;
    let config = format!(
        "poll_method\t\tepoll\n\
         sip_listen\t\t127.0.0.1:{sip_port}\n\
         net_interface\t\t127.0.0.1\n\
         dns_server\t\t127.0.0.1:53\n\
         call_local_timeout\t60\n\
         audio_player\t\taubridge,nil\n\
         audio_alert\t\taubridge,nil\n\
         audio_source\t\taufile,{wav}\n\
         ausrc_srate\t\t8000\n\
         ausrc_channels\t\t1\n\
         rtp_ports\t\t{rtp_base}-{rtp_end}\n\
         rtcp_mux\t\tyes\n\
         module_path\t\t/usr/lib/baresip/modules\n\
         module\t\t\tg711.so\n\
         module\t\t\taufile.so\n\
         module\t\t\taubridge.so\n\
         module\t\t\tdtls_srtp.so\n\
         module_tmp\t\taccount.so\n\
         module_app\t\tmenu.so\n",
        wav = wav.display(),
        rtp_end = rtp_base + 99,
    );
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(
        dir.join("accounts"),
        "<sip:baresip@127.0.0.1>;regint=0;mediaenc=dtls_srtp;audio_codecs=PCMU\n",
    )
    .unwrap();
    let mut child = Command::new("baresip")
        .arg("-f")
        .arg(&dir)
        .args(["-t", "15", "-e"])
        .arg(format!("/dial sip:natter@{target}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    for out in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    Some(Baresip { child, lines, dir })
}

fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.split("\r\n\r\n")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
        .collect()
}

#[test]
fn baresip_calls_us_and_we_are_dtls_client() {
    call_from_baresip(DtlsRole::Client);
}

#[test]
fn baresip_calls_us_and_we_are_dtls_server() {
    call_from_baresip(DtlsRole::Server);
}

/// baresip calls; we answer with `a=setup:active` (we are the DTLS client) or `passive`.
fn call_from_baresip(role: DtlsRole) {
    let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
    let Some(baresip) = start_baresip(sip.local_addr().unwrap()) else {
        return;
    };
    let deadline = Instant::now() + WALL_LIMIT;

    // The INVITE with baresip's offer.
    sip.set_read_timeout(Some(WALL_LIMIT)).unwrap();
    let mut buf = vec![0u8; 65535];
    let (invite, from) = loop {
        let (n, from) = sip.recv_from(&mut buf).expect("no INVITE from baresip");
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg.starts_with("INVITE ") {
            break (msg, from);
        }
    };
    let body = invite.split("\r\n\r\n").nth(1).unwrap().to_owned();
    let sdp_line = |prefix: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("offer has no {prefix}: {body}"))
            .trim()
            .to_owned()
    };
    let m_audio = sdp_line("m=audio ");
    let mut m = m_audio.split_whitespace();
    let rtp_port: u16 = m.next().unwrap().parse().unwrap();
    let proto = m.next().unwrap().to_owned();
    let fingerprint = sdp_line("a=fingerprint:");
    let (hash, their_fp) = fingerprint.split_once(' ').unwrap();
    assert!(hash.eq_ignore_ascii_case("sha-256"), "{fingerprint}");
    assert_eq!(sdp_line("a=setup:"), "actpass");

    // Our answer.
    let setup = match role {
        DtlsRole::Client => "active",
        DtlsRole::Server => "passive",
    };
    let cert = DtlsCertificate::generate().unwrap();
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let media_port = media.local_addr().unwrap().port();
    let answer = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {media_port} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\na=rtcp-mux\r\n\
         a=setup:{setup}\r\na=fingerprint:sha-256 {fp}\r\na=sendrecv\r\n",
        fp = cert.fingerprint_sha256()
    );
    let mut response = String::from("SIP/2.0 200 OK\r\n");
    for via in header(&invite, "Via") {
        response.push_str(&format!("Via: {via}\r\n"));
    }
    response.push_str(&format!("From: {}\r\n", header(&invite, "From")[0]));
    response.push_str(&format!("To: {};tag=natter1\r\n", header(&invite, "To")[0]));
    response.push_str(&format!("Call-ID: {}\r\n", header(&invite, "Call-ID")[0]));
    response.push_str(&format!("CSeq: {}\r\n", header(&invite, "CSeq")[0]));
    response.push_str(&format!(
        "Contact: <sip:natter@{}>\r\n",
        sip.local_addr().unwrap()
    ));
    response.push_str("Content-Type: application/sdp\r\n");
    response.push_str(&format!("Content-Length: {}\r\n\r\n{answer}", answer.len()));
    sip.send_to(response.as_bytes(), from).unwrap();

    // DTLS client against baresip's RTP port.
    let peer = SocketAddr::from(([127, 0, 0, 1], rtp_port));
    let mut dtls =
        DtlsEndpoint::new(role, &cert, Some(their_fp.to_owned()), Instant::now()).unwrap();
    let mut connected = None;
    while connected.is_none() {
        assert!(Instant::now() < deadline, "no DTLS connection with baresip");
        while let Some(d) = dtls.poll_datagram() {
            media.send_to(&d, peer).unwrap();
        }
        if let Some(ev) = dtls.poll_event() {
            match ev {
                DtlsEvent::Connected {
                    profile_id,
                    keying_material,
                    peer_fingerprint,
                    ..
                } => connected = Some((profile_id, keying_material, peer_fingerprint)),
                other => panic!("unexpected {other:?}"),
            }
            continue;
        }
        media
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        if let Ok((n, _)) = media.recv_from(&mut buf) {
            // Demultiplex (RFC 7983): baresip may already send SRTP (first byte 128..191).
            if (20..=63).contains(&buf[0]) {
                let _ = dtls.handle_datagram(&buf[..n], Instant::now());
            }
        }
        dtls.handle_timeout(Instant::now());
    }
    let (profile, material, peer_fp) = connected.unwrap();
    // The DTLS server picks by its own preference: baresip puts AES128_CM_SHA1_80 first, we
    // put AEAD_AES_128_GCM first (baresip offers it too).
    let (want_profile, want_len) = match role {
        DtlsRole::Client => (natter_dtls::SRTP_AES128_CM_HMAC_SHA1_80, 60),
        DtlsRole::Server => (natter_dtls::SRTP_AEAD_AES_128_GCM, 56),
    };
    assert_eq!(profile, want_profile);
    assert_eq!(material.len(), want_len);
    assert_eq!(peer_fp, their_fp.to_ascii_uppercase());
    // And baresip checked our certificate against our a=fingerprint.
    let verified = baresip.wait_line("fingerprint OK", deadline);
    assert!(verified.is_some(), "baresip did not verify our fingerprint");

    // Finally the keys themselves: baresip's SRTP packets must authenticate (and for GCM
    // decrypt) under the receive half of our srtp_keys split.
    let (_, _, rx_key, rx_salt) = srtp_keys(profile, &material, role.is_client()).unwrap();
    let packet = loop {
        assert!(Instant::now() < deadline, "no SRTP from baresip");
        let Ok((n, _)) = media.recv_from(&mut buf) else {
            continue;
        };
        // RTP (RFC 7983: 128..=191), payload type 0 (PCMU), not RTCP.
        if n > 12 && (128..=191).contains(&buf[0]) && buf[1] & 0x7F == 0 {
            break buf[..n].to_vec();
        }
    };
    match role {
        DtlsRole::Client => check_aes_cm_hmac_sha1_80(&packet, &rx_key, &rx_salt),
        DtlsRole::Server => check_aead_aes_128_gcm(&packet, &rx_key, &rx_salt),
    }
}

/// SRTP key derivation (RFC 3711 §4.3.1, index 0, kdr 0) with the AES-CM PRF; the GCM
/// profiles use the same PRF with their 12-byte salt zero-padded (RFC 7714 §11).
fn srtp_kdf(master_key: &[u8], master_salt: &[u8], label: u8, len: usize) -> Vec<u8> {
    let mut iv = [0u8; 16];
    iv[..master_salt.len()].copy_from_slice(master_salt);
    iv[7] ^= label;
    let cipher = Cipher::aes_128_ctr();
    openssl::symm::encrypt(cipher, master_key, Some(&iv), &vec![0u8; len]).unwrap()
}

/// AES128_CM_HMAC_SHA1_80: the last 10 bytes are HMAC-SHA1(auth key, packet || ROC)
/// (RFC 3711 §4.2); the first packets have ROC 0.
fn check_aes_cm_hmac_sha1_80(packet: &[u8], master_key: &[u8], master_salt: &[u8]) {
    let auth_key = srtp_kdf(master_key, master_salt, 0x01, 20);
    let (authenticated, tag) = packet.split_at(packet.len() - 10);
    let key = PKey::hmac(&auth_key).unwrap();
    let mut signer = Signer::new(MessageDigest::sha1(), &key).unwrap();
    signer.update(authenticated).unwrap();
    signer.update(&[0, 0, 0, 0]).unwrap();
    let mac = signer.sign_to_vec().unwrap();
    assert_eq!(&mac[..10], tag, "SRTP authentication tag does not verify");
}

/// AEAD_AES_128_GCM (RFC 7714 §8): IV = salt XOR (00 00 | SSRC | ROC | SEQ), the RTP header is
/// the AAD, 16-byte tag. baresip sends a silent WAV, so the PCMU payload is all 0xFF.
fn check_aead_aes_128_gcm(packet: &[u8], master_key: &[u8], master_salt: &[u8]) {
    let key = srtp_kdf(master_key, master_salt, 0x00, 16);
    let salt = srtp_kdf(master_key, master_salt, 0x02, 12);
    let header_len = 12 + 4 * usize::from(packet[0] & 0x0F);
    assert_eq!(packet[0] & 0x10, 0, "no header extension expected");
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&packet[8..12]); // SSRC
    iv[10..12].copy_from_slice(&packet[2..4]); // SEQ (ROC 0)
    for (b, s) in iv.iter_mut().zip(&salt) {
        *b ^= s;
    }
    let (header, rest) = packet.split_at(header_len);
    let (ciphertext, tag) = rest.split_at(rest.len() - 16);
    let plain = decrypt_aead(
        Cipher::aes_128_gcm(),
        &key,
        Some(&iv),
        header,
        ciphertext,
        tag,
    )
    .expect("SRTP AES-GCM packet does not decrypt");
    assert_eq!(plain, vec![0xFF; 160], "expected 20 ms of PCMU silence");
}
