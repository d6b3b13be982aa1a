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
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
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

fn certified_key(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
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
    // from_der also checks that the key belongs to the certificate.
    Ok(CertifiedKey::from_der(certs, key, &provider())?)
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Hands every handshake the certificate currently loaded, so one `ServerConfig` (shared by the
/// TURN and SIP listeners) follows a reload without being rebuilt.
#[derive(Debug)]
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        })
    }
}

fn config_for(resolver: Arc<CurrentCert>) -> Result<Arc<ServerConfig>, TlsError> {
    let cfg = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    Ok(Arc::new(cfg))
}

/// Builds a rustls server config from PEM files.
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let ck = certified_key(files)?;
    config_for(Arc::new(CurrentCert(RwLock::new(Arc::new(ck)))))
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

/// A TLS config whose certificate can be swapped at run time (SIGHUP): every listener holding
/// [`ReloadableTls::current`] uses the new certificate for its next handshake.
#[derive(Clone)]
pub struct ReloadableTls {
    files: TlsFiles,
    resolver: Arc<CurrentCert>,
    config: Arc<ServerConfig>,
}

impl ReloadableTls {
    /// Loads the files once.
    pub fn new(files: TlsFiles) -> Result<Self, TlsError> {
        let resolver = Arc::new(CurrentCert(RwLock::new(Arc::new(certified_key(&files)?))));
        let config = config_for(resolver.clone())?;
        Ok(Self {
            files,
            resolver,
            config,
        })
    }

    /// The certificate and key files (the DTLS listener loads them too).
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The config for handshakes (the same object across reloads).
    pub fn current(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }

    /// Re-reads the files; on error the old certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let ck = Arc::new(certified_key(&self.files)?);
        match self.resolver.0.write() {
            Ok(mut g) => *g = ck,
            Err(p) => *p.into_inner() = ck,
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
        let cfg = r.current();
        let before = r.resolver.0.read().unwrap().cert[0].clone();
        // A new certificate on disk, then SIGHUP: the same config object serves the new one.
        fs::remove_file(&f.cert).unwrap();
        fs::remove_file(&f.key).unwrap();
        files_or_self_signed(None, &dir, &["localhost".into()]).unwrap();
        r.reload().unwrap();
        let after = r.resolver.0.read().unwrap().cert[0].clone();
        assert_ne!(before, after);
        assert!(Arc::ptr_eq(&cfg, &r.current()));
        // Bad files leave the old certificate in place.
        fs::write(&f.cert, "garbage").unwrap();
        assert!(r.reload().is_err());
        assert_eq!(r.resolver.0.read().unwrap().cert[0], after);
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
