//! TLS for every TCP-based listener: certificates from files, or a self-signed one generated on
//! first start, and a reload hook for SIGHUP.
//!
//! The errors name the file and the reason in words an operator can act on, because the most
//! common complaint about TURN servers is an opaque TLS failure.

use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The certificate file had no PEM certificate in it.
    #[error("{0}: no PEM 'CERTIFICATE' block found (is this the key file?)")]
    NoCertificate(PathBuf),
    /// The key file had no private key in it.
    #[error("{0}: no PEM private key found (PKCS#8, PKCS#1 or SEC1 expected)")]
    NoKey(PathBuf),
    /// rustls refused the pair, e.g. the key does not match the certificate.
    #[error("certificate/key rejected: {0}")]
    Rustls(#[from] rustls::Error),
    /// Generating the self-signed certificate failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing the generated certificate failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Builds a rustls server config from PEM files.
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_pem = read(&files.cert)?;
    let certs: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut BufReader::new(&cert_pem[..]))
            .collect::<Result<_, _>>()
            .map_err(|source| TlsError::Read {
                path: files.cert.clone(),
                source,
            })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(files.cert.clone()));
    }
    let key_pem = read(&files.key)?;
    let key: PrivateKeyDer<'static> =
        rustls_pemfile::private_key(&mut BufReader::new(&key_pem[..]))
            .map_err(|source| TlsError::Read {
                path: files.key.clone(),
                source,
            })?
            .ok_or_else(|| TlsError::NoKey(files.key.clone()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(cfg))
}

/// Returns the configured files, or generates a self-signed pair in `data_dir` on first start
/// (kept for later starts, so clients that pinned it keep working).
pub fn files_or_self_signed(
    configured: Option<TlsFiles>,
    data_dir: &Path,
    names: &[String],
) -> Result<TlsFiles, TlsError> {
    if let Some(f) = configured {
        return Ok(f);
    }
    let files = TlsFiles {
        cert: data_dir.join("natter-selfsigned.crt"),
        key: data_dir.join("natter-selfsigned.key"),
    };
    if files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    let mut subject = names.to_vec();
    if subject.is_empty() {
        subject.push("localhost".to_owned());
    }
    let ck = rcgen::generate_simple_self_signed(subject)?;
    let write = |p: &Path, s: String| {
        fs::write(p, s).map_err(|source| TlsError::Write {
            path: p.to_owned(),
            source,
        })
    };
    write(&files.cert, ck.cert.pem())?;
    write(&files.key, ck.key_pair.serialize_pem())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(&files.key, fs::Permissions::from_mode(0o600));
    }
    tracing::info!(cert = %files.cert.display(), "generated a self-signed TLS certificate");
    Ok(files)
}

/// A TLS config that can be swapped at run time (SIGHUP): new handshakes use the new one.
#[derive(Clone)]
pub struct ReloadableTls {
    files: TlsFiles,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl ReloadableTls {
    /// Loads the files once.
    pub fn new(files: TlsFiles) -> Result<Self, TlsError> {
        let cfg = load(&files)?;
        Ok(Self {
            files,
            current: Arc::new(RwLock::new(cfg)),
        })
    }

    /// The config for the next handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Re-reads the files; on error the old certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let cfg = load(&self.files)?;
        match self.current.write() {
            Ok(mut g) => *g = cfg,
            Err(p) => *p.into_inner() = cfg,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_generated_once_and_loads() {
        let dir = std::env::temp_dir().join(format!("natter-tls-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let f = files_or_self_signed(None, &dir, &["localhost".into()]).unwrap();
        let first = fs::read(&f.cert).unwrap();
        let f2 = files_or_self_signed(None, &dir, &["localhost".into()]).unwrap();
        assert_eq!(first, fs::read(&f2.cert).unwrap());
        let r = ReloadableTls::new(f.clone()).unwrap();
        r.reload().unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn swapped_files_give_an_error_that_names_the_problem() {
        let dir = std::env::temp_dir().join(format!("natter-tls-bad-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let f = files_or_self_signed(None, &dir, &[]).unwrap();
        let swapped = TlsFiles {
            cert: f.key.clone(),
            key: f.cert.clone(),
        };
        let e = load(&swapped).err().unwrap().to_string();
        assert!(e.contains("no PEM 'CERTIFICATE'"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
