//! A NAT lab made of Linux network namespaces, for `natter demo`, tests and benchmarks:
//!
//! ```text
//!   lanA 10.10.1.2 -- rtrA (10.10.1.1 | 203.0.113.11) --+
//!                                                       br0 in pub: 203.0.113.1
//!   lanB 10.10.2.2 -- rtrB (10.10.2.1 | 203.0.113.12) --+
//! ```
//!
//! Each router NATs its LAN with iptables: `Cone` is MASQUERADE (endpoint-independent
//! mapping, port kept when free), `Symmetric` is MASQUERADE `--random-fully` (a new port
//! for every destination). Unsolicited inbound packets are dropped at the router, as a
//! home router does. Only addresses inside these namespaces are used; dropping the
//! [`Lab`] kills the processes it started and deletes the namespaces.

use std::process::{Child, Command, Stdio};

/// NAT behaviour of a router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat {
    /// Endpoint-independent mapping (full-cone-like mapping, port-restricted filtering).
    Cone,
    /// Address- and port-dependent mapping: a fresh port for every destination.
    Symmetric,
}

impl Nat {
    /// `cone` / `symmetric`.
    pub fn name(self) -> &'static str {
        match self {
            Nat::Cone => "cone",
            Nat::Symmetric => "symmetric",
        }
    }
}

/// Why the lab could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A command failed (no privileges, no iproute2/iptables...).
    #[error("`{cmd}` failed: {why}")]
    Command {
        /// The command line.
        cmd: String,
        /// Its stderr or the spawn error.
        why: String,
    },
}

/// The public server's address in `pub`.
pub const PUBLIC_IP: &str = "203.0.113.1";

/// A running lab.
pub struct Lab {
    prefix: String,
    made: Vec<String>,
    children: Vec<Child>,
}

fn run(args: &[&str]) -> Result<(), LabError> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LabError::Command {
            cmd: args.join(" "),
            why: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Command {
            cmd: args.join(" "),
            why: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

impl Lab {
    /// Whether this process may create network namespaces (root or CAP_SYS_ADMIN).
    pub fn can_create() -> bool {
        let name = format!("natter-probe-{}", std::process::id());
        let ok = run(&["ip", "netns", "add", &name]).is_ok();
        if ok {
            let _ = run(&["ip", "netns", "del", &name]);
        }
        ok
    }

    /// Builds the lab; namespace names start with `prefix`.
    pub fn up(prefix: &str, nat_a: Nat, nat_b: Nat) -> Result<Lab, LabError> {
        let mut lab = Lab {
            prefix: prefix.to_owned(),
            made: Vec::new(),
            children: Vec::new(),
        };
        lab.build(nat_a, nat_b)?;
        Ok(lab)
    }

    /// The full name of namespace `ns` (`pub`, `rtrA`, `rtrB`, `lanA`, `lanB`).
    pub fn ns(&self, ns: &str) -> String {
        format!("{}-{ns}", self.prefix)
    }

    fn x(&self, ns: &str, args: &[&str]) -> Result<(), LabError> {
        let name = self.ns(ns);
        let mut v = vec!["ip", "netns", "exec", name.as_str()];
        v.extend_from_slice(args);
        run(&v)
    }

    fn build(&mut self, nat_a: Nat, nat_b: Nat) -> Result<(), LabError> {
        for ns in ["pub", "rtrA", "rtrB", "lanA", "lanB"] {
            let name = self.ns(ns);
            run(&["ip", "netns", "add", &name])?;
            self.made.push(name);
            self.x(ns, &["ip", "link", "set", "lo", "up"])?;
            self.x(ns, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])?;
        }
        self.x("pub", &["ip", "link", "add", "br0", "type", "bridge"])?;
        self.x("pub", &["ip", "link", "set", "br0", "up"])?;
        self.x(
            "pub",
            &["ip", "addr", "add", "203.0.113.1/24", "dev", "br0"],
        )?;
        for (s, n, wan, nat) in [("A", 1, 11, nat_a), ("B", 2, 12, nat_b)] {
            let rtr = format!("rtr{s}");
            let lan = format!("lan{s}");
            let (pub_ns, rtr_ns, lan_ns) = (self.ns("pub"), self.ns(&rtr), self.ns(&lan));
            let v = format!("v{s}");
            run(&[
                "ip", "link", "add", "wan0", "netns", &rtr_ns, "type", "veth", "peer", "name", &v,
                "netns", &pub_ns,
            ])?;
            self.x("pub", &["ip", "link", "set", &v, "master", "br0"])?;
            self.x("pub", &["ip", "link", "set", &v, "up"])?;
            self.x(
                &rtr,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("203.0.113.{wan}/24"),
                    "dev",
                    "wan0",
                ],
            )?;
            self.x(&rtr, &["ip", "link", "set", "wan0", "up"])?;
            run(&[
                "ip", "link", "add", "lan0", "netns", &rtr_ns, "type", "veth", "peer", "name",
                "eth0", "netns", &lan_ns,
            ])?;
            self.x(
                &rtr,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("10.10.{n}.1/24"),
                    "dev",
                    "lan0",
                ],
            )?;
            self.x(&rtr, &["ip", "link", "set", "lan0", "up"])?;
            self.x(
                &lan,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("10.10.{n}.2/24"),
                    "dev",
                    "eth0",
                ],
            )?;
            self.x(&lan, &["ip", "link", "set", "eth0", "up"])?;
            self.x(
                &lan,
                &[
                    "ip",
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("10.10.{n}.1"),
                ],
            )?;
            self.x(&rtr, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
            // Unsolicited inbound dies before conntrack confirms it (a home router).
            self.x(
                &rtr,
                &[
                    "iptables",
                    "-A",
                    "INPUT",
                    "-i",
                    "wan0",
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "NEW,INVALID",
                    "-j",
                    "DROP",
                ],
            )?;
            let src = format!("10.10.{n}.0/24");
            let mut rule = vec![
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                "wan0",
                "-s",
                src.as_str(),
                "-j",
                "MASQUERADE",
            ];
            if nat == Nat::Symmetric {
                rule.push("--random-fully");
            }
            self.x(&rtr, &rule)?;
        }
        Ok(())
    }

    /// A command that runs `program` inside namespace `ns`.
    pub fn command(&self, ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(ns), program]);
        c
    }

    /// Keeps `child` to be killed when the lab goes down.
    pub fn adopt(&mut self, child: Child) -> usize {
        self.children.push(child);
        self.children.len() - 1
    }

    /// A child started with [`Lab::adopt`].
    pub fn child(&mut self, i: usize) -> Option<&mut Child> {
        self.children.get_mut(i)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.made.iter().rev() {
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}
