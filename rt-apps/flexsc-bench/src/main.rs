//! `flexsc-bench` binary: see the library crate.

fn main() {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(flexsc_bench::app::main_with_args(&args));
}
