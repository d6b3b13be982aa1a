//! `natter demo`: one command, no set-up. It builds a NAT lab (natter-netlab: phone A
//! behind a cone NAT, phone B behind a symmetric NAT, natter serve on the "public"
//! network), starts natter serve and two `natter phone` processes (this same binary),
//! registers both, calls A -> B with speech one way and a tone the other, records both
//! ends, hangs up and prints a report. Without the privileges for namespaces it runs the
//! same call on loopback and says that no NAT was simulated.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use natter_netlab::{Lab, Nat, PUBLIC_IP};
use natter_phone::quality;

/// Arguments of `natter demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Codec for the call (PCMU, PCMA, G722, opus).
    #[arg(long, default_value = "opus")]
    pub codec: String,
    /// Media protection (off, sdes, dtls).
    #[arg(long, default_value = "dtls")]
    pub srtp: String,
    /// Call length in seconds.
    #[arg(long, default_value_t = 6.0)]
    pub duration: f64,
    /// Keep the work directory (recordings, logs) and print its path.
    #[arg(long)]
    pub keep: bool,
    /// NAT in front of phone A: cone or symmetric.
    #[arg(long, default_value = "cone", value_parser = ["cone", "symmetric"])]
    pub nat_a: String,
    /// NAT in front of phone B: cone or symmetric.
    #[arg(long, default_value = "symmetric", value_parser = ["cone", "symmetric"])]
    pub nat_b: String,
}

fn nat(name: &str) -> Nat {
    if name == "cone" {
        Nat::Cone
    } else {
        Nat::Symmetric
    }
}

const TONE_HZ: f64 = 440.0;
const PASSWORD: &str = "demo-secret";

struct WorkDir(PathBuf, bool);

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A speech-like test signal when espeak-ng is missing: voiced syllables (a glottal
/// pulse train through two formant resonators) with pitch and formant movement and
/// pauses, so the cross-correlation has one clear peak.
fn synthetic_speech(rate: u32, seconds: f64) -> Vec<i16> {
    let n = (f64::from(rate) * seconds) as usize;
    let mut out = Vec::with_capacity(n);
    let (mut y1, mut y2, mut z1, mut z2) = (0f64, 0f64, 0f64, 0f64);
    let mut phase = 0f64;
    for i in 0..n {
        let t = i as f64 / f64::from(rate);
        let syl = (t * 4.0) as usize;
        let within = t * 4.0 - syl as f64;
        let voiced = syl % 5 != 4 && within < 0.8;
        let f0 = 110.0 + 30.0 * ((syl * 7 % 5) as f64) + 20.0 * within;
        phase += f0 / f64::from(rate);
        let pulse = if phase >= 1.0 {
            phase -= 1.0;
            1.0
        } else {
            0.0
        };
        let src = if voiced { pulse } else { 0.0 };
        let (f1, f2) = (
            300.0 + 400.0 * ((syl * 3 % 4) as f64) / 3.0,
            900.0 + 1400.0 * ((syl * 5 % 6) as f64) / 5.0,
        );
        let res = |f: f64, bw: f64| {
            let r = (-std::f64::consts::PI * bw / f64::from(rate)).exp();
            (
                2.0 * r * (2.0 * std::f64::consts::PI * f / f64::from(rate)).cos(),
                -r * r,
            )
        };
        let (a1, a2) = res(f1, 80.0);
        let y = src + a1 * y1 + a2 * y2;
        y2 = y1;
        y1 = y;
        let (b1, b2) = res(f2, 120.0);
        let z = y + b1 * z1 + b2 * z2;
        z2 = z1;
        z1 = z;
        let env = (std::f64::consts::PI * within / 0.8).sin().max(0.0);
        out.push((z * env * 900.0).clamp(-32000.0, 32000.0) as i16);
    }
    out
}

fn write_wav(path: &Path, pcm: &[i16], rate: u32) -> Result<(), String> {
    let mut w = natter_media::WavRecorder::create(path, rate).map_err(|e| e.to_string())?;
    w.write(pcm).map_err(|e| e.to_string())?;
    w.finalize().map_err(|e| e.to_string())
}

fn read_wav(path: &Path) -> Option<(Vec<i16>, u32)> {
    let c = natter_phone::audio::Clip::load(path).ok()?;
    Some((c.pcm, c.rate))
}

/// The speech sample: espeak-ng when installed, else the synthetic one (8 kHz mono).
fn speech(dir: &Path) -> Result<(PathBuf, &'static str), String> {
    let raw = dir.join("espeak.wav");
    let text = "Natter calls across any NAT. One, two, three, four, five. \
                The quick brown fox jumps over the lazy dog.";
    let ok = Command::new("espeak-ng")
        .args(["-s", "150", "-w"])
        .arg(&raw)
        .arg(text)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let path = dir.join("speech.wav");
    if ok {
        if let Some((pcm, rate)) = read_wav(&raw) {
            let mut out = Vec::new();
            if let Ok(mut r) = natter_media::Resampler::new(rate, 8000) {
                r.process(&pcm, &mut out);
            }
            write_wav(&path, &out, 8000)?;
            return Ok((path, "espeak-ng speech"));
        }
    }
    write_wav(&path, &synthetic_speech(8000, 5.0), 8000)?;
    Ok((path, "synthetic speech (espeak-ng not installed)"))
}

/// Reads a phone's stdout lines on a thread; returns a handle to collect them.
fn collect_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
    }
    rx
}

fn wait_line(
    rx: &std::sync::mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    prefix: &str,
    until: Instant,
) -> bool {
    loop {
        if seen.iter().any(|l| l.starts_with(prefix)) {
            return true;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => return false,
        }
    }
}

fn field<'a>(lines: &'a [String], event: &str, key: &str) -> Option<&'a str> {
    let l = lines
        .iter()
        .rev()
        .find(|l| l.starts_with(&format!("{event} ")))?;
    l.split(' ')
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

struct Setup {
    serve: Command,
    a: Command,
    b: Command,
    server: String,
}

/// Runs `natter demo`.
pub fn run(args: DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let dir = std::env::temp_dir().join(format!("natter-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut work = WorkDir(dir.clone(), args.keep);
    let (speech_wav, speech_kind) = speech(&dir)?;
    let prefix = format!("natter-demo-{}", std::process::id());
    let mut lab = if Lab::can_create() {
        match Lab::up(&prefix, nat(&args.nat_a), nat(&args.nat_b)) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("natter demo: cannot build the NAT lab ({e}); running on loopback");
                None
            }
        }
    } else {
        None
    };
    let server = if lab.is_some() {
        PUBLIC_IP
    } else {
        "127.0.0.1"
    }
    .to_owned();
    let phone_ip = |side: &str| -> String {
        match (&lab, side) {
            (Some(_), "A") => "10.10.1.2".into(),
            (Some(_), _) => "10.10.2.2".into(),
            (None, "A") => "127.0.0.1".into(),
            (None, _) => "127.0.0.1".into(),
        }
    };
    let sip_port = if lab.is_some() { 5060 } else { 25060 };
    let turn_port = if lab.is_some() { 3478 } else { 23478 };
    let cmd = |ns: &str| -> Command {
        match &lab {
            Some(l) => {
                let mut c = l.command(ns, &exe.to_string_lossy());
                c.stdin(Stdio::null());
                c
            }
            None => {
                let mut c = Command::new(&exe);
                c.stdin(Stdio::null());
                c
            }
        }
    };
    let mut s = Setup {
        serve: cmd("pub"),
        a: cmd("lanA"),
        b: cmd("lanB"),
        server: server.clone(),
    };
    s.serve
        .args([
            "serve",
            "--realm",
            "natter.test",
            "--sip-domain",
            "natter.test",
            "--no-tls",
        ])
        .args(["--turn-listen", &format!("{server}:{turn_port}")])
        .args(["--sip-listen", &format!("{server}:{sip_port}")])
        .args([
            "--user",
            &format!("alice:{PASSWORD}"),
            "--user",
            &format!("bob:{PASSWORD}"),
        ])
        .args(["--allow-peer", "203.0.113.0/24", "--allow-loopback-peers"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("serve.log"))?);
    for (c, user, side, rec) in [
        (&mut s.a, "alice", "A", "a.wav"),
        (&mut s.b, "bob", "B", "b.wav"),
    ] {
        c.args([
            "phone",
            "--account",
            &format!("sip:{user}@natter.test"),
            "--password",
            PASSWORD,
        ])
        .args(["--registrar", &format!("sip:{}:{sip_port}", s.server)])
        .args(["--listen", &format!("{}:0", phone_ip(side))])
        .args(["--stun", &format!("stun:{}:{turn_port}", s.server)])
        .args(["--turn", &format!("turn:{}:{turn_port}", s.server)])
        .args(["--turn-user", &format!("{user}:{PASSWORD}")])
        .args(["--codec", &args.codec, "--srtp", &args.srtp])
        .arg("--record")
        .arg(dir.join(rec))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(
            dir.join(format!("phone-{side}.log")),
        )?);
    }
    s.a.arg("--play").arg(&speech_wav).args([
        "--call",
        "sip:bob@natter.test",
        "--duration",
        &args.duration.to_string(),
    ]);
    s.b.args(["--tone", &TONE_HZ.to_string(), "--answer", "--once"]);

    // No wait for natter serve: a phone's REGISTER is retransmitted (RFC 3261 timer E)
    // until the server answers.
    let mut serve = s.serve.spawn()?;
    let mut b = s.b.spawn()?;
    let rx_b = collect_lines(&mut b);
    let mut lines_b = Vec::new();
    let t0 = Instant::now();
    if !wait_line(
        &rx_b,
        &mut lines_b,
        "registered",
        t0 + Duration::from_secs(15),
    ) {
        let _ = b.kill();
        let _ = serve.kill();
        return Err(format!("phone B did not register: {}", lines_b.join(" | ")).into());
    }
    let mut a = s.a.spawn()?;
    let rx_a = collect_lines(&mut a);
    let mut lines_a = Vec::new();
    let limit = Instant::now() + Duration::from_secs_f64(args.duration + 40.0);
    let status_a = wait_child(&mut a, limit);
    let status_b = wait_child(&mut b, Instant::now() + Duration::from_secs(10));
    lines_a.extend(rx_a.try_iter());
    lines_b.extend(rx_b.try_iter());
    let _ = serve.kill();
    let _ = serve.wait();
    drop(lab.take());

    // The report.
    let nat = if server == PUBLIC_IP {
        format!(
            "A behind a {} NAT (10.10.1.2), B behind a {} NAT (10.10.2.2), natter serve on 203.0.113.1",
            args.nat_a, args.nat_b
        )
    } else {
        "no NAT simulated (no privileges for network namespaces): both phones on loopback".into()
    };
    println!("natter demo: {nat}");
    for (name, lines) in [("A (caller)", &lines_a), ("B (callee)", &lines_b)] {
        let get = |e: &str, k: &str| field(lines, e, k).unwrap_or("?").to_owned();
        println!(
            "{name}: ice pair {} -> {} | codec {} | srtp {} | setup {} ms | remote {}",
            get("established", "ice"),
            get("established", "ice_remote"),
            get("established", "codec"),
            get("established", "srtp"),
            get("established", "setup_ms"),
            get("established", "remote"),
        );
        println!(
            "{name}: packets sent {} received {} | lost {} | jitter {} ms | rtt {} ms | {}",
            get("stats", "tx_packets"),
            get("stats", "rx_packets"),
            get("stats", "rx_lost"),
            get("stats", "jitter_ms"),
            get("stats", "rtt_ms"),
            lines
                .iter()
                .rev()
                .find(|l| l.starts_with("ended"))
                .map_or("no end", |s| s.as_str()),
        );
    }
    let speech_ref = read_wav(&speech_wav);
    let got_b = read_wav(&dir.join("b.wav"));
    let got_a = read_wav(&dir.join("a.wav"));
    let mut good = status_a && status_b;
    match (speech_ref, got_b) {
        (Some((r, rr)), Some((g, gr))) if !g.is_empty() => {
            let al = quality::align(&r, rr, &g, gr, 1000);
            println!(
                "A -> B {speech_kind}: match xcorr {:.3}, mouth-to-ear delay {:.0} ms",
                al.xcorr, al.delay_ms
            );
            good &= al.xcorr > 0.5;
        }
        _ => {
            println!("A -> B speech: match 0 (no recording)");
            good = false;
        }
    }
    match got_a {
        Some((g, gr)) if !g.is_empty() => {
            let share = quality::tone_share(&g, gr, TONE_HZ);
            println!(
                "B -> A {TONE_HZ} Hz tone: match {:.3} of active frames at the tone",
                share
            );
            good &= share > 0.8;
        }
        _ => {
            println!("B -> A tone: match 0 (no recording)");
            good = false;
        }
    }
    if args.keep {
        println!("work directory kept: {}", work.0.display());
    }
    if good {
        Ok(())
    } else {
        work.1 = true;
        Err(format!(
            "the demo call did not go well; logs in {}",
            work.0.display()
        )
        .into())
    }
}

/// Waits for `child` until `until`; kills it past that. Returns whether it exited 0.
fn wait_child(child: &mut Child, until: Instant) -> bool {
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return s.success(),
            Ok(None) => {}
            Err(_) => return false,
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
