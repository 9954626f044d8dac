//! Both committed copies of the CRD YAML — `deploy/crds/` and the Helm chart's `crds/` — must
//! equal what the Rust types generate.

#[test]
fn committed_crds_match_generated() {
    let rendered = pangea_crdgen::render().expect("render CRDs");
    assert!(!rendered.is_empty());
    for dir in pangea_crdgen::default_out_dirs() {
        for crd in &rendered {
            let path = dir.join(&crd.file_name);
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == crd.yaml,
                "{} is out of date: run `cargo run -p pangea-crdgen` and commit the result",
                path.display()
            );
        }
        let files = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .count();
        assert_eq!(
            files,
            pangea_api::crds().len(),
            "stale files in {}",
            dir.display()
        );
    }
}
