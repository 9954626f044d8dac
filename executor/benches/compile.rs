//! Compile time of a generated 200-resource template, with Ruby's own start-up cost measured
//! separately in the same run. Goal: whole compile ≤ 0.3 s. Run: `cargo bench -p pangea-executor`.

use std::{
    fmt::Write as _,
    process::Command,
    time::{Duration, Instant},
};

use pangea_executor::compile::{BackendChoice, CompileRequest, Compiler, find_ruby};

const RESOURCES: usize = 200;
const ROUNDS: usize = 15;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("big.rb");
    std::fs::write(&file, template(RESOURCES)).expect("write template");
    let ruby = find_ruby(None).expect("ruby on PATH");

    let startup = median(|| {
        let status = Command::new(&ruby)
            .args(["--disable-gems", "-e", ""])
            .status()
            .expect("ruby runs");
        assert!(status.success());
    });

    let compiler = Compiler::new(ruby.clone()).with_cache_dir(dir.path().join("cache"));
    let request = CompileRequest {
        file: file.clone(),
        backend: BackendChoice::None,
        ..CompileRequest::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let library = median(|| {
        let out = runtime
            .block_on(compiler.compile(&request))
            .expect("compile");
        assert!(out.is_ok(), "{:?}", out.errors);
        assert_eq!(out.templates[0].resource_count(), RESOURCES);
    });

    let binary = median(|| {
        let out = Command::new(env!("CARGO_BIN_EXE_pangea-executor"))
            .args(["compile", "--no-backend"])
            .arg(&file)
            .output()
            .expect("binary runs");
        assert!(out.status.success());
    });

    println!("compile benchmark: {RESOURCES} resources, median of {ROUNDS} runs");
    println!(
        "  ruby start-up (ruby --disable-gems -e ''): {}",
        ms(startup)
    );
    println!(
        "  library compile (ruby + DSL + parse):      {}",
        ms(library)
    );
    println!(
        "  DSL work beyond start-up:                  {}",
        ms(library.saturating_sub(startup))
    );
    println!(
        "  binary `pangea-executor compile`:          {}",
        ms(binary)
    );
    println!(
        "  goal ≤ 300 ms: {}",
        if binary <= Duration::from_millis(300) {
            "met"
        } else {
            "MISSED"
        }
    );
}

/// A realistic mix: buckets with nested blocks, tags hashes and references.
fn template(count: usize) -> String {
    let mut text =
        String::from("template :big do\n  provider :aws do\n    region \"us-east-1\"\n  end\n");
    for i in 0..count {
        let _ = write!(
            text,
            "  resource :aws_s3_bucket, :b{i} do\n    bucket \"bucket-{i}\"\n    tags({{ Name: \"b{i}\", Index: {i} }})\n    \
             lifecycle do\n      prevent_destroy false\n    end\n    depends_on [ref(:aws_s3_bucket, :b0, :id)]\n  end\n"
        );
    }
    text + "end\n"
}

fn median(mut run: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[ROUNDS / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
