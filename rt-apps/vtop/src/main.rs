//! `vtop` binary: see [`vtop::cli`].

fn main() {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(vtop::cli::main_with_args(&args));
}
