//! Builds `src/mimalloc_options.c`: the two mimalloc options the binary sets, by their names in the
//! mimalloc header that libmimalloc-sys builds against (it exports the header's folder as
//! `DEP_MIMALLOC_INCLUDE_DIR`). The Rust bindings name neither option, and their numbers differ between
//! mimalloc versions, so setting them by number would silently set another option after an upgrade.

fn main() {
    println!("cargo:rerun-if-changed=src/mimalloc_options.c");
    let include = std::env::var("DEP_MIMALLOC_INCLUDE_DIR")
        .expect("libmimalloc-sys exports its include directory");
    cc::Build::new()
        .file("src/mimalloc_options.c")
        .include(include)
        .compile("iam_audit_mimalloc_options");
}
