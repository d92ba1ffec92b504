//! The `servo` command: options, the real-time loop, the telemetry paths,
//! `decode` and `spi-id`.

pub mod decode;
pub mod log;
pub mod options;
pub mod run;

use options::Command;

/// Runs the command line `args` (without the program name); returns the
/// exit code.
pub fn main_with_args(args: &[String]) -> i32 {
    match options::parse(args) {
        Err(e) => {
            eprintln!("servo: {}\n(servo --help lists the options)", e.0);
            run::EXIT_USAGE
        }
        Ok(Command::Help) => {
            print!("{}", options::help_text());
            run::EXIT_OK
        }
        Ok(Command::Version) => {
            println!("servo {}", env!("CARGO_PKG_VERSION"));
            run::EXIT_OK
        }
        Ok(Command::Decode(o)) => decode::run(&o),
        Ok(Command::SpiId(o)) => match crate::linux::spi::read_id(&o.device, o.speed_hz) {
            Ok(id) if id.is_absent() => {
                eprintln!(
                    "servo: {}: no SPI NOR answered (ID {:02x} {:02x} {:02x})",
                    o.device, id.manufacturer, id.memory_type, id.capacity
                );
                run::EXIT_ERROR
            }
            Ok(id) => {
                println!(
                    "JEDEC ID: {:02x} {:02x} {:02x} (manufacturer: {}, memory type 0x{:02x}, capacity 0x{:02x})",
                    id.manufacturer,
                    id.memory_type,
                    id.capacity,
                    id.manufacturer_name().unwrap_or("unknown"),
                    id.memory_type,
                    id.capacity
                );
                run::EXIT_OK
            }
            Err(e) => {
                eprintln!("servo: spi-id: {e}");
                run::EXIT_ERROR
            }
        },
        Ok(Command::Run(o)) => run::run(&o),
    }
}
