//! plant-sim: the simulated plant of the control app behind a gpio-sim
//! chip (see `plant-sim --help` and [`plant::sim`]).

use plant::sim::chip::{self, Chip};
use plant::sim::options::{self, Options, Parsed};
use plant::sim::run;
use plant::Params;
use std::io::Write;
use std::process::ExitCode;

fn fail(msg: &str) -> ExitCode {
    eprintln!("plant-sim: {msg}");
    ExitCode::from(1)
}

fn realtime(o: &Options) -> Result<(), String> {
    if let Some(cpu) = o.cpu {
        rt_utils::affinity::pin_to(cpu).map_err(|e| format!("--cpu={cpu}: {e}"))?;
    }
    if o.priority > 0 {
        rt_utils::sched::mlockall().map_err(|e| format!("mlockall: {e}"))?;
        if rt_utils::sched::set_scheduler(libc::SCHED_FIFO, o.priority).is_err() {
            rt_utils::sched::raise_rtprio_limit(libc::SCHED_FIFO, o.priority);
            rt_utils::sched::set_scheduler(libc::SCHED_FIFO, o.priority)
                .map_err(|e| format!("SCHED_FIFO priority {}: {e}", o.priority))?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let o = match options::parse(&args) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Help) => {
            print!("{}", options::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Remove) => {
            return match chip::remove_device() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Err(e) => {
            eprintln!("plant-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(&o.params) {
        Ok(t) => t,
        Err(e) => return fail(&format!("cannot read {}: {e}", o.params)),
    };
    let params = match Params::parse(&text) {
        Ok(p) => p,
        Err(e) => return fail(&format!("{}: {e}", o.params)),
    };
    match chip::ensure_gpio_sim() {
        Ok(Some(note)) => eprintln!("plant-sim: {note}"),
        Ok(None) => {}
        Err(e) => return fail(&e),
    }
    let chip = match Chip::create() {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    if let Err(e) = realtime(&o) {
        drop(chip);
        return fail(&e);
    }
    let result = run::run(&chip, params, &o, |start| {
        println!(
            "plant-sim: ready: /dev/{} ({}, label {}), position {start}, {} Hz",
            chip.chip_name,
            chip.dev_name,
            plant::lines::CHIP_LABEL,
            o.rate_hz
        );
        let _ = std::io::stdout().flush();
    });
    let removed = chip.remove();
    let summary = match result {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    println!("plant-sim: done: {}", summary.line());
    if let Some(path) = &o.json {
        if let Err(e) = std::fs::write(path, summary.json() + "\n") {
            return fail(&format!("cannot write {path}: {e}"));
        }
    }
    match removed {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}
