//! Builds `src/mimalloc_options.c`: the two mimalloc options the binary sets, by their names in the
//! mimalloc header that libmimalloc-sys builds against (it exports the header's folder as
//! `DEP_MIMALLOC_INCLUDE_DIR`). The Rust bindings name neither option, and their numbers differ between
//! mimalloc versions, so setting them by number would silently set another option after an upgrade.
//!
//! Cargo.toml asks for a libmimalloc-sys that exports the folder; should one not, the build goes on with
//! mimalloc's defaults (a warning says so) rather than fail.

fn main() {
    println!("cargo:rerun-if-changed=src/mimalloc_options.c");
    println!("cargo::rustc-check-cfg=cfg(mimalloc_options)");
    match std::env::var("DEP_MIMALLOC_INCLUDE_DIR") {
        Ok(include) if std::path::Path::new(&include).join("mimalloc.h").exists() => {
            cc::Build::new()
                .file("src/mimalloc_options.c")
                .include(include)
                .compile("iam_audit_mimalloc_options");
            println!("cargo:rustc-cfg=mimalloc_options");
        }
        _ => println!(
            "cargo:warning=libmimalloc-sys did not export mimalloc.h's folder (DEP_MIMALLOC_INCLUDE_DIR): mimalloc runs with its default options (more memory stays resident; docs/performance.md)"
        ),
    }
}
