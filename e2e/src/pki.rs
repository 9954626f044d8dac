//! Certificates and keys for a throw-away control plane: a CA, the apiserver's serving
//! certificate signed by it (so clients that refuse insecure TLS, like terraform's kubernetes
//! backend, can verify it), and the service-account signing key.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

use crate::{Result, io_err};

/// Files written into the control plane's directory.
#[derive(Clone, Debug)]
pub struct Pki {
    /// CA certificate (PEM) clients trust.
    pub ca_pem: String,
    /// Path of the CA certificate.
    pub ca_cert: PathBuf,
    /// Serving certificate of the apiserver.
    pub serving_cert: PathBuf,
    /// Its key.
    pub serving_key: PathBuf,
    /// Service-account token signing key.
    pub service_account_key: PathBuf,
    /// Its public key, which the apiserver verifies tokens with.
    pub service_account_pub: PathBuf,
}

/// Names the serving certificate is valid for: loopback plus in-cluster service names.
const SERVING_NAMES: &[&str] = &[
    "127.0.0.1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "10.96.0.1",
];

impl Pki {
    /// Generates everything into `dir`.
    pub fn generate(dir: &Path) -> Result<Self> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "pangea-e2e-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let names: Vec<String> = SERVING_NAMES.iter().map(|s| (*s).to_owned()).collect();
        let mut serving = CertificateParams::new(names)?;
        serving
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        let serving_key = KeyPair::generate()?;
        let serving_cert = serving.signed_by(&serving_key, &ca)?;
        let sa_key = KeyPair::generate()?;

        let write = |name: &str, content: &str| -> Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, content)
                .map_err(io_err(format!("writing {}", path.display())))?;
            Ok(path)
        };
        Ok(Self {
            ca_pem: ca.pem(),
            ca_cert: write("ca.crt", &ca.pem())?,
            serving_cert: write("apiserver.crt", &serving_cert.pem())?,
            serving_key: write("apiserver.key", &serving_key.serialize_pem())?,
            service_account_key: write("sa.key", &sa_key.serialize_pem())?,
            service_account_pub: write("sa.pub", &sa_key.public_key_pem())?,
        })
    }
}
