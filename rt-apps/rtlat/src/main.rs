//! `rtlat` binary: see the library crate for the implementation.

fn main() {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(rtlat::app::main_with_args(&args));
}
