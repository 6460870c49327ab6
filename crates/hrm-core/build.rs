//! With the `tch` feature: compiles `cpp/hrm_attention.cpp` (libtorch's cuDNN attention, which
//! tch does not bind) against the libtorch that torch-sys found (`DEP_TCH_LIBTORCH_LIB`).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=cpp/hrm_attention.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    if std::env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    let lib = PathBuf::from(std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys names libtorch's lib folder"));
    let root = lib.parent().map(PathBuf::from).unwrap_or_else(|| lib.clone());
    // libtorch 2.x builds use the C++11 ABI; LIBTORCH_CXX11_ABI=0 for an old pre-cxx11 build.
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .file("cpp/hrm_attention.cpp")
        .compile("hrm-attention");
}
