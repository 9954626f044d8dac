//! `pangea-crdgen`: writes the CRD YAML of every pangea.io kind into `deploy/crds/` and the
//! Helm chart's `crds/`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// Writes one YAML file per CRD.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Output directory; repeat for several (default: `deploy/crds/` and the chart's `crds/`).
    #[arg(long)]
    out: Vec<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let Args { mut out } = Args::parse();
    if out.is_empty() {
        out = pangea_crdgen::default_out_dirs();
    }
    let rendered = pangea_crdgen::render()?;
    for dir in out {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for crd in &rendered {
            let path = dir.join(&crd.file_name);
            std::fs::write(&path, &crd.yaml)
                .with_context(|| format!("writing {}", path.display()))?;
            println!("{}", path.display());
        }
    }
    Ok(())
}
