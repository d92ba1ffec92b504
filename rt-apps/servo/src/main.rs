//! `servo`: see `servo --help` and docs/control-app.md.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(servo::app::main_with_args(&args));
}
