//! `pangea-crdgen`: writes the CRD YAML of every pangea.io kind into `deploy/crds/`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// Writes one YAML file per CRD.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Output directory.
    #[arg(long, default_value_os_t = pangea_crdgen::default_out_dir())]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let Args { out } = Args::parse();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for crd in pangea_crdgen::render()? {
        let path = out.join(&crd.file_name);
        std::fs::write(&path, crd.yaml).with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}
